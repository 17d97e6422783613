"""The MQTT uplink: drains the store to the broker, alarm lane first, QoS 1, mTLS.

A batch leaves the store only after the broker's PUBACK. On every (re)connection the
cursors start again from the oldest unacknowledged batch, so whatever was in flight when the
link dropped is sent again (consumers dedupe by ``seq``). The uplink publishes a signed,
retained **birth** batch on connect and leaves a pre-signed **death** batch as its last
will; both are on the ``state`` stream, whose consumers need only check that ``seq`` grows
(it is a retained, last-value topic: intermediate values are not kept by the broker).

Alarm batches usually leave **before** their commit: :meth:`Uplink.publish_early` publishes
one the moment it is signed, while the store thread commits it. Once committed it reaches
the pump like any other batch, which then only waits for that publish's PUBACK and removes
it from the store (or publishes it again if the early publish failed).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgesdk.errors import ConfigError, StoreError
from gateway.config import UplinkConfig
from gateway.store import Lane, Prepared, Store, Stored

__all__ = ["Uplink", "UplinkStats", "tls_context"]

log = logging.getLogger("edgesdk.gateway.uplink")
# aiomqtt warns about every publish beyond ten in flight; our window is deliberate.
_mqtt_log = logging.getLogger("edgesdk.gateway.uplink.mqtt")
_mqtt_log.setLevel(logging.ERROR)
T = TypeVar("T")

COSE_CONTENT_TYPE = "application/cose; cose-type=cose-sign1"
# Sealed batches kept in memory for publishing, per lane; past this the uplink reads the store.
FRESH_MAX_BYTES = 32 << 20
ACK_RETRY = 1.0  # seconds between attempts to remove delivered batches the store refused


@dataclass(slots=True)
class UplinkStats:
    connected: bool = False
    connects: int = 0
    connect_failures: int = 0
    published: int = 0
    acked: int = 0
    publish_errors: int = 0
    ack_errors: int = 0  # delivered batches the store could not remove yet (retried)
    published_early: int = 0  # alarm batches the broker had before their commit ended
    in_flight: int = 0
    last_error: str | None = None
    last_connect: float | None = None
    last_disconnect: float | None = None
    published_by_lane: dict[str, int] = field(default_factory=dict)


def tls_context(cfg: UplinkConfig, *, key_password: bytes | None = None) -> ssl.SSLContext | None:
    """A client TLS context with the gateway's certificate, or None for mqtt:// URLs."""
    if not cfg.tls:
        return None
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(cfg.ca) if cfg.ca else None
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cfg.cert is not None and cfg.key is not None:
            ctx.load_cert_chain(str(cfg.cert), str(cfg.key), password=key_password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot build the TLS context: {exc}",
            key="uplink.ca/cert/key",
            fix="check the certificate and key paths (provision check shows which)",
        ) from exc
    return ctx


class Uplink:
    """Publishes stored batches; call :meth:`notify` after sealing to wake it."""

    def __init__(
        self,
        cfg: UplinkConfig,
        *,
        store: Store,
        executor: Executor,
        site: str,
        gw: str,
        birth: Callable[[], Awaitable[bytes]],
        death: Callable[[str], Awaitable[bytes]],
        key_password: bytes | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self._executor = executor
        self.prefix = f"{cfg.topic_prefix.rstrip('/')}/{site}/{gw}"
        self._birth = birth
        self._death = death
        parts = urlsplit(cfg.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if cfg.tls else 1883)
        self.client_id = cfg.client_id or f"{site}-{gw}"
        self._tls = tls_context(cfg, key_password=key_password)
        self.stats = UplinkStats()
        self._work = asyncio.Event()
        self._alarm = asyncio.Event()
        self._acks: list[Stored] = []
        self._ack_event = asyncio.Event()
        self._stopping = False
        self._was_connected = False
        self._fresh: dict[Lane, collections.deque[Stored]] = {
            ln: collections.deque() for ln in Lane
        }
        self._fresh_bytes = dict.fromkeys(Lane, 0)
        self._caught_up = dict.fromkeys(Lane, False)
        self._client: aiomqtt.Client | None = None
        # alarm batches published before their commit, by (stream, seq): True once PUBACKed
        self._early: dict[tuple[str, int], asyncio.Task[bool]] = {}
        # called at each PUBACK of a batch (early or not), once per publish
        self.on_delivered: Callable[[Stored | Prepared], None] | None = None

    def topic(self, stream: str) -> str:
        return f"{self.prefix}/{stream}"

    def notify(self, lane: Lane, stored: Sequence[Stored] = ()) -> None:
        """New batches were sealed (and committed) in ``lane``.

        Passing them in lets the uplink publish from memory instead of reading them back
        from the store: the hot path. The store stays the source of truth: after a
        reconnect, or when the in-memory queue overflows, the uplink reads it again.
        """
        fresh = self._fresh[lane]
        for item in stored:
            fresh.append(item)
            self._fresh_bytes[lane] += len(item.message)
        if self._fresh_bytes[lane] > FRESH_MAX_BYTES:
            fresh.clear()
            self._fresh_bytes[lane] = 0
            self._caught_up[lane] = False
        if lane is Lane.ALARM:
            self._alarm.set()
        self._work.set()

    def publish_early(self, item: Prepared) -> bool:
        """Publish an alarm batch now, while its commit runs on the store thread.

        Only while connected and with every committed alarm batch already on its way (so
        the stream leaves in order); returns False otherwise, and the batch is published
        from the store after its commit, like any other.
        """
        client = self._client
        if client is None or self._stopping or not self._caught_up[Lane.ALARM]:
            return False
        if any((i.stream, i.seq) not in self._early for i in self._fresh[Lane.ALARM]):
            return False
        task = asyncio.create_task(self._publish_early(client, item))
        self._early[(item.stream, item.seq)] = task
        return True

    async def _send(self, client: aiomqtt.Client, item: Stored | Prepared) -> None:
        """One QoS 1 publish, until its PUBACK; counts it in flight meanwhile, and as a
        publish error if it raises."""
        self.stats.in_flight += 1
        try:
            await client.publish(
                self.topic(item.stream),
                item.message,
                qos=1,
                properties=self._props(),
                timeout=math.inf,
            )
        except aiomqtt.MqttError:
            self.stats.publish_errors += 1
            raise
        finally:
            self.stats.in_flight -= 1
        self._count_published(item.lane)

    async def _publish_early(self, client: aiomqtt.Client, item: Prepared) -> bool:
        try:
            await self._send(client, item)
        except aiomqtt.MqttError:
            return False  # the pump publishes it from the store after its commit
        self.stats.published_early += 1
        if self.on_delivered is not None:
            self.on_delivered(item)
        return True

    def _count_published(self, lane: Lane) -> None:
        self.stats.published += 1
        name = lane.name.lower()
        self.stats.published_by_lane[name] = self.stats.published_by_lane.get(name, 0) + 1

    def unsent(self, lane: Lane) -> int | None:
        """Batches of ``lane`` sealed but not yet handed to the broker, while connected
        and caught up with the store; None otherwise (disconnected, or draining what the
        store kept through an outage: then falling behind is expected, not a sign of
        overload)."""
        if not self.stats.connected or not self._caught_up[lane]:
            return None
        return len(self._fresh[lane])

    def _unread(self, lane: Lane, items: Sequence[Stored]) -> None:
        """Put batches taken from memory but not published back at the front."""
        if self._caught_up[lane]:
            for item in reversed(items):
                self._fresh[lane].appendleft(item)
                self._fresh_bytes[lane] += len(item.message)

    async def _next_batch(self, lane: Lane, after: int, limit: int) -> list[Stored]:
        """Up to ``limit`` batches of ``lane`` with id > ``after``, oldest first.

        From memory once caught up with the store; otherwise from the store, and a short
        read means everything newer will arrive through :meth:`notify`.
        """
        fresh = self._fresh[lane]
        if self._caught_up[lane]:
            out: list[Stored] = []
            while fresh and len(out) < limit:
                item = fresh.popleft()
                self._fresh_bytes[lane] -= len(item.message)
                if item.id > after:
                    out.append(item)
            return out
        rows = await self._db(self.store.pending, lane, after=after, limit=limit)
        if len(rows) < limit:
            self._caught_up[lane] = True
        return rows

    async def _db(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kw))

    # -- the connection loop --------------------------------------------------------------
    async def run(self) -> None:
        """Connect, drain, reconnect with exponential backoff and jitter, until stopped.

        The birth/death pair is sealed once and reused across failed connection attempts;
        a fresh pair is sealed only after a session was actually established.
        """
        attempt = 0
        pair: tuple[bytes, bytes] | None = None
        while not self._stopping:
            if pair is None:
                pair = (await self._birth(), await self._death("connection-lost"))
            self._was_connected = False
            try:
                await self._session(*pair)
            except aiomqtt.MqttError as exc:
                self._disconnected(exc)
            if self._was_connected:
                pair = None
                attempt = 0
            if self.stopping:
                break
            delay = min(self.cfg.reconnect_max, self.cfg.reconnect_min * (2**attempt))
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter

    def _disconnected(self, exc: BaseException) -> None:
        if self.stats.connected:
            self.stats.last_disconnect = time.time()
            log.warning("uplink: lost the broker at %s:%s: %s", self.host, self.port, exc)
        else:
            self.stats.connect_failures += 1
        self.stats.connected = False
        self.stats.in_flight = 0
        self.stats.last_error = f"{type(exc).__name__}: {exc}"

    async def _session(self, birth: bytes, death: bytes) -> None:
        protocol = (
            aiomqtt.ProtocolVersion.V5 if self.cfg.protocol == "5" else aiomqtt.ProtocolVersion.V311
        )
        will = aiomqtt.Will(self.topic("state"), death, qos=1, retain=True)
        async with aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            protocol=protocol,
            will=will,
            keepalive=self.cfg.keepalive,
            tls_context=self._tls,
            max_inflight_messages=self.cfg.inflight * 2,
            timeout=10,
            clean_session=True if protocol is aiomqtt.ProtocolVersion.V311 else None,
            logger=_mqtt_log,
        ) as client:
            self._client = client
            self._was_connected = True
            self.stats.connected = True
            self.stats.connects += 1
            self.stats.last_connect = time.time()
            log.info("uplink: connected to %s:%s as %s", self.host, self.port, self.client_id)
            try:
                await client.publish(
                    self.topic("state"),
                    birth,
                    qos=1,
                    retain=True,
                    properties=self._props(),
                    timeout=10,
                )
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._pump(client))
                    tg.create_task(self._flush_acks())
                    tg.create_task(self._watch(client))
            except* aiomqtt.MqttError as group:
                raise group.exceptions[0] from None
            finally:
                self._client = None
                for task in self._early.values():
                    task.cancel()  # the next session publishes them from the store
                self._early.clear()
                self._caught_up = dict.fromkeys(Lane, False)  # until the next pump reads it
                if self._stopping:
                    with contextlib.suppress(Exception):
                        final = await self._death("shutdown")
                        await client.publish(
                            self.topic("state"),
                            final,
                            qos=1,
                            retain=True,
                            properties=self._props(),
                            timeout=2,
                        )
                await self._flush_acks_now()

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Ends (raising MqttError) when the connection drops."""
        async for _ in client.messages:
            pass
        raise aiomqtt.MqttError("connection closed")

    def _props(self) -> Properties | None:
        if self.cfg.protocol != "5":
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = COSE_CONTENT_TYPE
        return props

    # -- draining -------------------------------------------------------------------------
    async def _pump(self, client: aiomqtt.Client) -> None:
        window = asyncio.Semaphore(self.cfg.inflight)
        cursors = dict.fromkeys(Lane, 0)
        self._caught_up = dict.fromkeys(Lane, False)  # re-read the store after (re)connect
        tasks: set[asyncio.Task[None]] = set()
        failure: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            while True:
                self._work.clear()
                sent_any = False
                for lane in Lane:
                    self._alarm.clear()
                    batch = await self._next_batch(lane, cursors[lane], self.cfg.inflight)
                    for i, item in enumerate(batch):
                        if lane is not Lane.ALARM and self._alarm.is_set():
                            self._unread(lane, batch[i:])
                            break  # an alarm was sealed: it goes next
                        if lane is not Lane.ALARM:
                            await window.acquire()
                        if failure.done():
                            failure.result()
                        cursors[lane] = item.id
                        early = self._early.pop((item.stream, item.seq), None)
                        task = asyncio.create_task(
                            self._publish(
                                client,
                                item,
                                window if lane is not Lane.ALARM else None,
                                failure,
                                early,
                            )
                        )
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                        sent_any = True
                    if sent_any:
                        break  # start again from the alarm lane
                if failure.done():
                    failure.result()
                if not sent_any:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await self._work.wait()
        finally:
            for task in tasks:
                task.cancel()
            if not failure.done():
                failure.cancel()

    async def _publish(
        self,
        client: aiomqtt.Client,
        item: Stored,
        window: asyncio.Semaphore | None,
        failure: asyncio.Future[None],
        early: asyncio.Task[bool] | None = None,
    ) -> None:
        # published early, the broker had it before its commit ended: only remove it
        if early is None or not await _succeeded(early):
            try:
                await self._send(client, item)
            except aiomqtt.MqttError as exc:
                if not failure.done():
                    failure.set_exception(exc)
                return
            finally:
                if window is not None:
                    window.release()
            if self.on_delivered is not None:
                self.on_delivered(item)
        self._acks.append(item)
        self._ack_event.set()

    async def _flush_acks(self) -> None:
        while True:
            await self._ack_event.wait()
            await asyncio.sleep(0.01)  # gather acks for 10 ms
            if not await self._flush_acks_now():
                await asyncio.sleep(ACK_RETRY)
                self._ack_event.set()

    async def _flush_acks_now(self) -> bool:
        """Remove delivered batches from the store; False if the store refused (a full
        disk, a read-only file system): they stay listed and are tried again, and if the
        gateway stops first they are sent again after the restart (consumers dedupe by
        ``seq``). Publishing goes on meanwhile: a store that cannot delete must not stop
        the alarms it still holds from leaving."""
        self._ack_event.clear()
        if not self._acks:
            return True
        items, self._acks = self._acks, []
        try:
            await self._db(self.store.ack, items)
        except StoreError as exc:
            self._acks[:0] = items
            self.stats.ack_errors += 1
            self.stats.last_error = f"store: {exc}"
            log.error("uplink: %s; %d delivered batches kept, retrying", exc, len(items))
            return False
        self.stats.acked += len(items)
        return True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Ask the loop to end after publishing a final death message."""
        self._stopping = True
        self._work.set()


async def _succeeded(task: asyncio.Task[bool]) -> bool:
    """Whether an early publish got its PUBACK; waiting for it without cancelling it."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            return False  # its session ended: publish again
        raise
