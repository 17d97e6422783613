"""The gateway process: drivers -> rules -> sealed, signed batches -> durable store -> MQTT.

Run it with ``edgectl gateway run --config gateway.toml``.
"""

__all__: list[str] = []
