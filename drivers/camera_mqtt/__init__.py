"""IP cameras over MQTT: Frigate, the Axis MQTT event bridge, and a generic JSON format.

:class:`CameraMqttDriver` (entry point ``camera-mqtt``) subscribes with aiomqtt and turns
detections into ``camera-fire``, ``camera-smoke``, ``person``, ``motion``, ``tamper`` and
``camera-offline`` events (``docs/events.md``); snapshots are served by digest through
``get_blob``. The payload parsing (:mod:`drivers.camera_mqtt.parse`) is sans-I/O and
written from the documented formats, independently of the emulator in
``emulators.cameras``.
"""

from drivers.camera_mqtt.driver import CameraMqttDriver

__all__ = ["CameraMqttDriver"]
