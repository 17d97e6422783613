"""The MQTT side of the consumer: subscribe, reconnect, acknowledge after handling.

``async with Consumer(...) as c: async for outcome in c:`` — one background task owns the
connection (TLS with a client certificate, exponential backoff with jitter) and hands each
message to the iterator, which feeds the sans-I/O :class:`~.core.Inspector`.

**At least once.** Subscriptions are QoS 1, and with a ``client_id`` the session is
persistent (MQTT 5: clean start off, session expiry; 3.1.1: clean session off), so the
broker queues what arrives while the consumer is away. A message is acknowledged (PUBACK)
only once the caller asked for the outcome after its last one — a consumer that dies
mid-way gets the message again and reports it as a duplicate rather than missing it.
Messages parked waiting for their key are acknowledged when parked (the broker's in-flight
window must not fill up with them, or the birth that teaches the key could never arrive).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import secrets
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgesdk.consumer.core import Inspector
from edgesdk.consumer.outcomes import Outcome, Summary
from edgesdk.consumer.tracking import STATE_STREAM, DedupeTracker, Tracker
from edgesdk.consumer.trust import SiteTrust
from edgesdk.errors import ConfigError, ConnectionLostError, EdgeError

__all__ = ["Consumer", "ConsumerStats", "parse_broker", "tls_context"]

log = logging.getLogger("edgesdk.consumer")


def parse_broker(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of ``mqtts://host[:8883]`` or ``mqtt://host[:1883]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"broker URL {url!r} is not mqtts://host[:port] or mqtt://host[:port]",
            key="broker",
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"broker URL {url!r}: {exc}", key="broker") from exc
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (8883 if tls else 1883), tls


def tls_context(
    ca: str | os.PathLike[str] | None = None,
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    *,
    password: bytes | None = None,
) -> ssl.SSLContext:
    """A client TLS context: verify the broker against ``ca`` (default: system CAs) and
    present ``cert``/``key`` when given (brokers that require client certificates)."""
    if (cert is None) != (key is None):
        raise ConfigError("give both a client certificate and its key, or neither", key="tls")
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=os.fspath(ca) if ca is not None else None
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert is not None and key is not None:
            ctx.load_cert_chain(os.fspath(cert), os.fspath(key), password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot build the TLS context: {exc}",
            key="tls",
            fix="check the broker CA, client certificate and key paths",
        ) from exc
    return ctx


def _state_filter(topic: str, prefix: str) -> str:
    """The ``state`` topics a data filter covers: births must reach every group member."""
    levels, base = topic.split("/"), prefix.split("/")
    rest = levels[len(base) :] if levels[: len(base)] == base else []
    site = rest[0] if rest and rest[0] not in ("#", "") else "+"
    gw = rest[1] if len(rest) > 1 and rest[1] != "#" else "+"
    return f"{prefix}/{site}/{gw}/{STATE_STREAM}"


@dataclass(slots=True)
class ConsumerStats:
    connected: bool = False
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Delivery:
    gen: int
    client: aiomqtt.Client
    message: aiomqtt.Message


class Consumer:
    """Subscribe to gateways' topics and yield typed, verified outcomes.

    ``trust`` says which keys are trusted (site CAs and pinned certificates); ``share``
    joins the MQTT shared subscription ``$share/<share>/<topic>`` so several processes split
    the load — its tracker then defaults to :class:`~.tracking.DedupeTracker` (no false
    gaps: merge the members' outcomes with :func:`~.tracking.merge`), and every member also
    subscribes to the ``state`` topics unshared so each learns every gateway's key.
    ``client_id`` makes the session persistent (``persistent=False`` to opt out).
    """

    def __init__(
        self,
        broker: str,
        *,
        trust: SiteTrust,
        topics: Sequence[str] = ("edge/v1/#",),
        share: str | None = None,
        client_id: str | None = None,
        persistent: bool | None = None,
        protocol: Literal["5", "3.1.1"] = "5",
        tls: ssl.SSLContext | None = None,
        session_expiry: int = 86_400,
        tracker: Tracker | None = None,
        prefix: str = "edge/v1",
        unknown_key_grace: float = 2.0,
        keepalive: int = 30,
        reconnect_min: float = 0.2,
        reconnect_max: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.host, self.port, use_tls = parse_broker(broker)
        if share is not None and (not share or any(c in share for c in "/+#")):
            raise ConfigError(f"share group {share!r} must be non-empty, without / + #")
        if not topics:
            raise ConfigError("subscribe to at least one topic", key="topics")
        if protocol not in ("5", "3.1.1"):
            raise ConfigError(f"MQTT protocol {protocol!r} is not '5' or '3.1.1'", key="protocol")
        self.persistent = client_id is not None if persistent is None else persistent
        if self.persistent and client_id is None:
            raise ConfigError("a persistent session needs a stable client_id", key="client_id")
        self.client_id = client_id or f"edgesdk-consumer-{secrets.token_hex(4)}"
        self.protocol = protocol
        self.tls = tls if tls is not None else (tls_context() if use_tls else None)
        self.share = share
        self.prefix = prefix.strip("/")
        self.topics = list(topics)
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.reconnect = (reconnect_min, reconnect_max)
        self.connect_timeout = connect_timeout
        if tracker is None and share is not None:
            tracker = DedupeTracker()
        self.inspector = Inspector(
            trust, tracker=tracker, prefix=self.prefix, unknown_key_grace=unknown_key_grace
        )
        self.stats = ConsumerStats()
        self.subscribed = asyncio.Event()
        self._queue: asyncio.Queue[_Delivery | None] = asyncio.Queue()
        self._ready: collections.deque[Outcome] = collections.deque()
        self._unacked: list[_Delivery] = []
        self._gen = 0
        self._live: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._finished = False
        self._error: EdgeError | None = None

    # -- public surface ----------------------------------------------------------------
    def subscriptions(self) -> list[str]:
        """The topic filters subscribed on every (re)connection."""
        if self.share is None:
            return list(self.topics)
        shared = [f"$share/{self.share}/{t}" for t in self.topics]
        states = sorted({_state_filter(t, self.prefix) for t in self.topics})
        return shared + states

    def summary(self) -> Summary:
        return self.inspector.summary()

    @property
    def messages(self) -> int:
        """Messages handled so far (verified, rejected or parked)."""
        return self.inspector.messages

    def stop(self) -> None:
        """End the iteration: parked messages are rejected, then iteration stops.

        Safe to call from a signal handler or a timer; idempotent.
        """
        if not self._stopping:
            self._stopping = True
            self._queue.put_nowait(None)

    async def __aenter__(self) -> Consumer:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.client_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(ack=exc_type is None)

    async def aclose(self, *, ack: bool = True) -> None:
        """Acknowledge what the caller has handled (unless ``ack`` is false) and disconnect."""
        self.stop()
        if ack and not self._ready:  # the last message's outcomes were all taken
            self._ack_handled()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> Outcome:
        while True:
            if self._ready:
                return self._ready.popleft()
            self._ack_handled()
            if self._finished:
                raise StopAsyncIteration
            if self._error is not None:
                self._finished = True
                raise self._error
            if self._stopping:
                self._ready.extend(self.inspector.flush())
                self._finished = True
                continue
            expired = self.inspector.expire()
            if expired:
                self._ready.extend(expired)
                continue
            deadline = self.inspector.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    item = await self._queue.get()
            except TimeoutError:
                continue
            if item is None:
                continue  # stop() or a fatal error woke us
            if self.persistent and item.gen != self._live:
                # unacknowledged, from a connection that is gone: the broker sends it again
                continue
            self._handle(item)

    # -- internals ---------------------------------------------------------------------
    def _handle(self, item: _Delivery) -> None:
        msg = item.message
        payload = msg.payload
        data = bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()
        outcomes = self.inspector.feed(msg.topic.value, data, retained=bool(msg.retain))
        if outcomes:
            self._ready.extend(outcomes)
            self._unacked.append(item)
        else:
            self._ack(item)  # parked: see the module docstring

    def _ack_handled(self) -> None:
        items, self._unacked = self._unacked, []
        for item in items:
            self._ack(item)

    def _ack(self, item: _Delivery) -> None:
        if item.message.qos > 0 and item.gen == self._live:
            # aiomqtt has no manual-ack API: we switched paho (its engine) to manual acks
            # before connecting, so PUBACK goes out only now that the message is handled.
            item.client._client.ack(item.message.mid, item.message.qos)

    def _make_client(self) -> aiomqtt.Client:
        v5 = self.protocol == "5"
        props: Properties | None = None
        if v5 and self.persistent:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else not self.persistent,
            clean_start=not self.persistent if v5 else MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
            tls_context=self.tls,
            keepalive=self.keepalive,
            timeout=self.connect_timeout,
            logger=log,
        )
        client._client.manual_ack_set(True)  # before connecting: queued messages come first
        return client

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        for topic in self.subscriptions():
            granted = await client.subscribe(topic, qos=1, timeout=self.connect_timeout)
            codes = [getattr(g, "value", g) for g in granted]
            if codes == [0]:
                log.warning("consumer: %s granted at QoS 0 only: at most once delivery", topic)
            if any(not isinstance(c, int) or c >= 0x80 for c in codes):
                raise ConfigError(
                    f"the broker refused the subscription to {topic} (reason codes {codes})",
                    key="topics",
                    fix="let this client subscribe there (broker ACL) or change the topic",
                )

    async def _run(self) -> None:
        """The connection loop; a fatal error ends it and is raised by the iterator."""
        try:
            await self._connect_loop()
        except EdgeError as exc:
            self._fail(exc)
        except Exception as exc:  # a bug here must surface, not leave the iterator waiting
            fatal = ConnectionLostError(f"consumer connection loop failed: {exc!r}")
            fatal.__cause__ = exc
            self._fail(fatal)

    def _fail(self, exc: EdgeError) -> None:
        log.error("consumer: %s", exc)
        self.stats.last_error = str(exc)
        self._error = exc
        self._queue.put_nowait(None)

    async def _connect_loop(self) -> None:
        attempt = 0
        low, high = self.reconnect
        while not self._stopping:
            connected = False
            try:
                client = self._make_client()
                async with client:
                    connected = True
                    self._gen += 1
                    self._live = self._gen
                    self.stats.connected = True
                    self.stats.connects += 1
                    log.info(
                        "consumer: connected to %s:%s as %s", self.host, self.port, self.client_id
                    )
                    await self._subscribe(client)
                    log.info("consumer: subscribed to %s", " ".join(self.subscriptions()))
                    self.subscribed.set()
                    attempt = 0
                    async for message in client.messages:
                        self._queue.put_nowait(_Delivery(self._gen, client, message))
            except aiomqtt.MqttError as exc:
                self.stats.last_error = str(exc) or type(exc).__name__
                if connected:
                    self.stats.disconnects += 1
                    log.warning("consumer: lost %s:%s: %s", self.host, self.port, exc)
                else:
                    self.stats.connect_failures += 1
                    log.warning("consumer: cannot connect to %s:%s: %s", self.host, self.port, exc)
            finally:
                self._live = None
                self.stats.connected = False
                self.subscribed.clear()
            delay = min(high, low * 2**attempt)
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter
