"""One device's MQTT connection (aiomqtt), which can also die the way a power cut does.

Each emulated device has its own connection, as real ones do: the Frigate NVR (with its
last will on ``frigate/available``), every Axis camera, every generic camera. Besides a
clean disconnect, :meth:`Link.abort` cuts the TCP stream without an MQTT DISCONNECT, so
the broker publishes the last will, which is what a subscriber sees when a camera loses
power. aiomqtt has no public call for that; we shut down the socket of its paho client
(``Client._client``, the documented way to reach paho) and then collect the resulting
"unexpected disconnection" so asyncio never reports it as unretrieved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import TYPE_CHECKING

from edgesdk.errors import ConnectionLostError
from emulators.cameras.model import Message

if TYPE_CHECKING:
    import aiomqtt

__all__ = ["Link"]

_log = logging.getLogger(__name__)


class Link:
    """A device's connection: connect, publish, close cleanly, or abort uncleanly.

    ``birth`` is published after every (re)connection (Frigate's retained ``online``);
    ``will`` is registered with the broker at connect time. A failed publish drops the
    connection; the next publish reconnects, at most once per ``retry_interval`` s.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        will: Message | None = None,
        birth: Message | None = None,
        retry_interval: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.will = will
        self.birth = birth
        self.retry_interval = retry_interval
        self.wanted = True  # False while the device is switched off on purpose
        self._client: aiomqtt.Client | None = None
        self._last_attempt = float("-inf")

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        """Open the connection and publish the birth message (ConnectionLostError if not)."""
        import aiomqtt

        self.wanted = True
        if self._client is not None:
            return
        self._last_attempt = time.monotonic()
        will = None
        if self.will is not None:
            will = aiomqtt.Will(
                self.will.topic, self.will.payload, qos=self.will.qos, retain=self.will.retain
            )
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            will=will,
            protocol=aiomqtt.ProtocolVersion.V311,  # what both mosquitto and amqtt speak
            keepalive=30,
            timeout=10,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise ConnectionLostError(
                f"{self.client_id}: cannot connect to mqtt://{self.host}:{self.port}: {exc}"
            ) from exc
        self._client = client
        if self.birth is not None:
            await self.publish(self.birth)

    async def publish(self, msg: Message) -> None:
        """Publish; ConnectionLostError if the broker cannot be reached."""
        import aiomqtt

        if self._client is None:
            if not self.wanted or time.monotonic() - self._last_attempt < self.retry_interval:
                raise ConnectionLostError(f"{self.client_id}: not connected")
            await self.connect()
        client = self._client
        assert client is not None
        try:
            await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        except aiomqtt.MqttError as exc:
            await self._forget()
            raise ConnectionLostError(f"{self.client_id}: publish failed: {exc}") from exc

    async def close(self) -> None:
        """Disconnect cleanly (no last will)."""
        import aiomqtt

        self.wanted = False
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.__aexit__(None, None, None)
        except aiomqtt.MqttError as exc:
            _log.debug("%s: unclean close: %s", self.client_id, exc)
        self._collect(client)

    async def abort(self) -> None:
        """Cut the TCP stream without DISCONNECT: the broker publishes the last will."""
        self.wanted = False
        client = self._client
        if client is None:
            return
        sock = client._client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # wait (bounded) until paho notices and closes its side
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(client._disconnected), timeout=5)
        await self._forget()

    async def _forget(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)  # releases aiomqtt's lock
        self._collect(client)

    @staticmethod
    def _collect(client: aiomqtt.Client) -> None:
        """Retrieve aiomqtt's disconnect outcome so asyncio does not log it as lost."""
        fut = client._disconnected
        if fut.done() and not fut.cancelled():
            fut.exception()
