"""The driver's MQTT connection (aiomqtt): connect, subscribe, receive, close, bounded.

Received messages go to one bounded :class:`Inbox` that outlives each connection: paho
acknowledges a QoS 1 message as soon as it is queued, so a message received but not yet
read by ``stream()`` when the connection drops must not be lost with the client object.
aiomqtt takes a ``queue_type`` to build its queue; we hand it a factory returning our
inbox, the one place where we bend its API (it only ever calls ``queue_type(maxsize=)``).

A connection attempt runs in a task of its own, awaited through :func:`asyncio.shield`:
aiomqtt connects in an executor thread that a cancel cannot stop, and a half-made
connection must still be closed, so :meth:`MqttLink.close` waits for the attempt (bounded)
and closes what it produced. On Python 3.11 aiomqtt's ``asyncio.wait_for`` can swallow a
cancel, so no shutdown path here relies on a single ``cancel()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal, cast

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgesdk.errors import ConnectionLostError

__all__ = ["Inbox", "MqttLink"]

_log = logging.getLogger(__name__)
_mqtt_log = logging.getLogger("drivers.camera_mqtt.mqtt")


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """A bounded queue that drops the newest message when full, counting, never logging.

    aiomqtt logs a warning for every message a full queue refuses; a flood would flood the
    log, so a full inbox takes the message silently and counts it in ``dropped``.
    ``received`` counts every message the broker delivered.
    """

    def __init__(self, maxsize: int, counters: Counter[str]) -> None:
        super().__init__(maxsize)
        self._counters = counters

    def put_nowait(self, item: aiomqtt.Message) -> None:
        self._counters["received"] += 1
        if self.full():
            self._counters["dropped"] += 1
            return
        super().put_nowait(item)


def _refused(granted: Sequence[Any]) -> list[int]:
    """Indexes of the filters a SUBACK refused (0x80 and up, in 3.1.1 and 5 alike)."""
    out = []
    for i, code in enumerate(granted):
        value = code.value if isinstance(code, ReasonCode) else int(code)
        if value >= 0x80:
            out.append(i)
    return out


def _read_error(client: aiomqtt.Client) -> BaseException | None:
    """What broke the client's socket, if something did (retrieving it for asyncio)."""
    fut = client._disconnected
    if fut.done() and not fut.cancelled():
        return fut.exception()
    return None


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark an attempt's failure retrieved: its awaiter may have been cancelled meanwhile."""
    if not task.cancelled():
        task.exception()


class MqttLink:
    """One subscriber connection at a time, re-made on demand, into a shared inbox."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        protocol: Literal["3.1.1", "5"],
        filters: Sequence[str],
        qos: int,
        inbox: Inbox,
        timeout: float,
        keepalive: int,
        session_expiry: int,
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.protocol = protocol
        self.filters = list(filters)
        self.qos = qos
        self.inbox = inbox
        self.timeout = timeout
        self.keepalive = keepalive
        self.session_expiry = session_expiry
        self.tls_context = tls_context
        self.username = username
        self.password = password
        self._client: aiomqtt.Client | None = None
        self._attempt: asyncio.Task[tuple[aiomqtt.Client, list[str]]] | None = None
        self._pending: aiomqtt.Client | None = None  # the client an attempt is making
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def backlog(self) -> int:
        """Messages received and not yet read."""
        return self.inbox.qsize()

    # -- connecting ---------------------------------------------------------------------
    async def connect(self) -> list[str]:
        """Connect and subscribe; return the filters the broker refused.

        Raises :class:`~edgesdk.errors.ConnectionLostError` when the broker cannot be
        reached, refuses the connection, or the link is closing.
        """
        if self._closing:
            raise ConnectionLostError("the link is closed")
        if self._client is not None:
            return []
        task = self._attempt
        if task is None:
            task = self._attempt = asyncio.create_task(self._connect(), name="camera-mqtt-connect")
            task.add_done_callback(_retrieve)
        try:
            client, refused = await asyncio.shield(task)
        finally:
            if task.done() and self._attempt is task:
                self._attempt = None
        if self.closing:  # close() came while we connected
            await self._shutdown(client)
            raise ConnectionLostError("the link is closed")
        self._client = client
        return refused

    def _make_client(self) -> aiomqtt.Client:
        v5 = self.protocol == "5"
        extra: dict[str, Any] = {}
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry
            extra.update(clean_start=False, properties=props)
        else:
            extra.update(clean_session=False)
        inbox = self.inbox
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            username=self.username,
            password=self.password,
            keepalive=self.keepalive,
            timeout=self.timeout,
            tls_context=self.tls_context,
            logger=_mqtt_log,
            # aiomqtt calls queue_type(maxsize=...): give it the one inbox (see module doc)
            queue_type=cast("type[asyncio.Queue[aiomqtt.Message]]", lambda **_: inbox),
            **extra,
        )
        # paho's own TCP connect timeout (5 s by default) bounded by ours
        client._client.connect_timeout = self.timeout
        return client

    async def _connect(self) -> tuple[aiomqtt.Client, list[str]]:
        client = self._pending = self._make_client()
        try:
            return await self._handshake(client)
        finally:
            self._pending = None

    async def _handshake(self, client: aiomqtt.Client) -> tuple[aiomqtt.Client, list[str]]:
        where = f"mqtt{'s' if self.tls_context else ''}://{self.host}:{self.port}"
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            # a TLS refusal after the handshake (no client certificate under TLS 1.3) is
            # only logged by paho (logger drivers.camera_mqtt.mqtt); here it is a timeout
            raise ConnectionLostError(f"cannot connect to {where}: {exc}") from exc
        try:
            granted = await client.subscribe([(f, self.qos) for f in self.filters])
        except aiomqtt.MqttError as exc:
            await self._shutdown(client)
            raise ConnectionLostError(f"cannot subscribe at {where}: {exc}") from exc
        except BaseException:
            await self._shutdown(client)
            raise
        return client, [self.filters[i] for i in _refused(granted)]

    # -- receiving ----------------------------------------------------------------------
    async def receive(self) -> aiomqtt.Message:
        """The next message: what is queued first, then what the connection brings.

        Raises :class:`~edgesdk.errors.ConnectionLostError` when the inbox is empty and the
        connection is gone (or was never made).
        """
        with contextlib.suppress(asyncio.QueueEmpty):
            return self.inbox.get_nowait()
        client = self._client
        if client is None:
            raise ConnectionLostError("not connected")
        try:
            return await client.messages.__anext__()
        except aiomqtt.MqttError as exc:
            raise ConnectionLostError(f"connection lost: {exc}") from exc

    # -- closing ------------------------------------------------------------------------
    async def drop(self) -> None:
        """Forget the current connection (after a loss); the inbox keeps its messages."""
        client, self._client = self._client, None
        if client is not None:
            await self._shutdown(client)

    async def close(self) -> None:
        """End the connection and any attempt in progress; bounded, never raises."""
        self._closing = True
        task, self._attempt = self._attempt, None
        if task is not None:
            await self._end_attempt(task)
            if task.done() and not task.cancelled() and task.exception() is None:
                client, _ = task.result()
                if client is not self._client:
                    await self._shutdown(client)
        await self.drop()

    async def _end_attempt(self, task: asyncio.Task[tuple[aiomqtt.Client, list[str]]]) -> None:
        """Stop a connection attempt, at most ``timeout`` + 2 s.

        While paho's TCP connect runs in the executor thread nothing can stop it (it is
        bounded by ``timeout``), so we wait. Once the socket exists, a broker that never
        answers CONNACK or SUBACK would keep us waiting: we shut the socket down, so paho
        closes it, and cancel the attempt, again and again (aiomqtt's wait_for can swallow
        one cancel on Python 3.11).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout + 2.0
        await asyncio.wait({task}, timeout=0.2)  # most attempts end by themselves
        while not task.done() and loop.time() < deadline:
            pending = self._pending
            sock = pending._client.socket() if pending is not None else None
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                task.cancel()
            await asyncio.wait({task}, timeout=0.2)
        if not task.done():
            _log.warning("%s: a connection attempt outlived close()", self.client_id)

    async def _shutdown(self, client: aiomqtt.Client) -> None:
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                await client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            _log.debug("%s: unclean disconnect: %s", self.client_id, exc)
        _read_error(client)  # retrieved, so asyncio does not report it as lost
