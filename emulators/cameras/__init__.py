"""The camera emulator: Frigate, Axis and generic (Hikvision-style) cameras over MQTT.

aiomqtt is imported only when a camera connects, so importing this package stays cheap.
"""

from emulators.cameras.emulator import CameraEmulator, parse_broker_url
from emulators.cameras.model import DEFAULT_CAMERAS, CameraSpec, Counters, Fault, Kind, Message
from emulators.cameras.scenarios import SCENARIOS

__all__ = [
    "DEFAULT_CAMERAS",
    "SCENARIOS",
    "CameraEmulator",
    "CameraSpec",
    "Counters",
    "Fault",
    "Kind",
    "Message",
    "parse_broker_url",
]
