"""The embedded MQTT broker: amqtt on a loopback port, for demos and tests."""

from emulators.broker.embedded import MQTT_VERSIONS, EmbeddedBroker

__all__ = ["MQTT_VERSIONS", "EmbeddedBroker"]
