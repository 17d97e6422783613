"""The ``camera-mqtt`` driver: IP cameras (Frigate, Axis, generic JSON) over MQTT.

::

    cams = driver.create("camera-mqtt", {"broker": "mqtt://127.0.0.1:1883"}, instance="cameras")
    async with cams:
        async for item in cams.stream():        # camera-fire, camera-smoke, person, ...
            await store(item)
            digest = item.data.get("snapshot")  # a JPEG, by its SHA-256
            jpeg = cams.get_blob(digest) if digest else None

Layers: :mod:`~drivers.camera_mqtt.link` moves messages (aiomqtt, one bounded inbox),
:class:`~drivers.camera_mqtt.parse.Parser` turns each into a typed message or a typed
error (sans-I/O), :class:`~drivers.camera_mqtt.tracker.Tracker` turns those into events.
This module owns the connection's life: a lost broker raises one ``device-offline``
trouble event; the driver reconnects with capped, jittered exponential backoff,
re-subscribes and clears it, all inside ``stream()``. The session is persistent (clean
session off, a stable client id), so QoS 1 messages published meanwhile are delivered on
reconnection. Besides aiomqtt's own, the only task started is a connection attempt,
always awaited or closed by :meth:`CameraMqttDriver._close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator

from drivers.camera_mqtt.blobs import BlobStore
from drivers.camera_mqtt.config import CameraMqttConfig, broker_address
from drivers.camera_mqtt.link import Inbox, MqttLink
from drivers.camera_mqtt.parse import (
    Availability,
    Detection,
    Ignored,
    Parser,
    PayloadError,
    Snapshot,
)
from drivers.camera_mqtt.ratelog import RateLimitedLog
from drivers.camera_mqtt.tracker import TRACKER_COUNTERS, Tracker
from edgesdk.driver import Driver, DriverState
from edgesdk.errors import ConfigError, ConnectionLostError
from edgesdk.model import Event, EventKind, EventState, Item, Severity

__all__ = ["COUNTERS", "CameraMqttDriver"]

_log = logging.getLogger(__name__)
_TICK = 1.0  # longest wait for a message before looking at the timers again

COUNTERS = (
    "received",  # messages the broker delivered
    "dropped",  # ... of which the full inbox dropped (queue_size)
    "messages_frigate",  # valid messages, by format
    "messages_axis",
    "messages_generic",
    "ignored",  # valid, but of no use (camera not allowed, label unmapped, no group)
    "malformed",  # not JSON
    "wrong_type",  # JSON of the wrong shape or types
    "oversize",  # over max_payload_bytes (not decoded)
    "bad_snapshot",  # a snapshot that is not a JPEG
    "snapshot_oversize",  # a snapshot over snapshot_max_bytes
    "snapshots",  # snapshots kept
    "internal_errors",  # a message the driver failed on (a bug): skipped, logged
    "events",  # events emitted
    *TRACKER_COUNTERS,
    "connect_attempts",
    "reconnects",
    "disconnects",
    "subscribe_refused",  # topic filters the broker refused
    "broker_offline",  # device-offline occurrences raised
)
"""Every counter in ``health.counters`` besides the base class's (``items``,
``commands``, ``command_errors``, ``errors``); all start at 0."""


def _default_client_id(instance: str) -> str:
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"edgesdk-{host or 'host'}-{instance}"[:64]


def _tls_context(config: CameraMqttConfig) -> ssl.SSLContext:
    """Verify the broker against ``ca`` (or the system CAs); present ``cert``/``key``."""
    try:
        context = ssl.create_default_context(cafile=config.ca)
        if config.cert is not None:
            context.load_cert_chain(config.cert, config.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS files: {exc}",
            key="ca" if config.cert is None else "cert",
            fix="point ca, cert and key at readable PEM files (a key without passphrase)",
        ) from exc
    return context


class CameraMqttDriver(Driver[CameraMqttConfig]):
    """Events from IP cameras on an MQTT broker; snapshots through :meth:`get_blob`.

    Takes no commands. See ``docs/drivers.md`` for the formats, events and counters.
    """

    name = "camera-mqtt"
    config_type = CameraMqttConfig

    def __init__(self, config: CameraMqttConfig, *, instance: str | None = None) -> None:
        super().__init__(config, instance=instance)
        self._host, self._port, self._tls = broker_address(config.broker)
        self.client_id = config.client_id or _default_client_id(self.instance)
        self._parser = Parser(
            config.groups,
            max_payload_bytes=config.max_payload_bytes,
            snapshot_max_bytes=config.snapshot_max_bytes,
        )
        self._tracker = self._new_tracker()
        self._blobs = BlobStore(
            config.snapshot_cache, config.snapshot_cache * config.snapshot_max_bytes
        )
        self._rlog = RateLimitedLog(_log)
        self._link: MqttLink | None = None
        self._fault: Event | None = None  # the active device-offline occurrence
        self._reason = "not connected yet"
        self._attempts = 0  # failed connection attempts since the broker was lost
        self._stop = asyncio.Event()
        self._jitter = random.Random()
        for counter in ("items", "commands", "command_errors", "errors", *COUNTERS):
            self._counters[counter] = 0  # every counter shows in health from the start

    def _new_tracker(self) -> Tracker:
        cfg = self.config
        return Tracker(
            self.instance,
            cfg.groups,
            self._counters,
            min_score=cfg.min_score,
            thresholds=cfg.score_thresholds,
            repeat_timeout=cfg.repeat_timeout,
            info_clear_delay=cfg.info_clear_delay,
        )

    @property
    def filters(self) -> list[str]:
        """The topic filters the driver subscribes to."""
        return self._parser.filters()

    def get_blob(self, digest: str) -> bytes | None:
        """The snapshot JPEG whose SHA-256 hex digest is ``digest``, while it is kept."""
        return self._blobs.get(digest)

    # -- life cycle ---------------------------------------------------------------------
    async def _open(self) -> None:
        cfg = self.config
        self._stop = asyncio.Event()
        self._fault = None
        self._tracker = self._new_tracker()
        tls = await asyncio.to_thread(_tls_context, cfg) if self._tls else None
        self._link = MqttLink(
            host=self._host,
            port=self._port,
            client_id=self.client_id,
            protocol=cfg.protocol,
            filters=self.filters,
            qos=cfg.qos,
            inbox=Inbox(cfg.queue_size, self._counters),
            timeout=cfg.connect_timeout,
            keepalive=cfg.keepalive,
            session_expiry=cfg.session_expiry,
            tls_context=tls,
            username=cfg.username,
            password=cfg.password,
        )
        self._tracker.start(asyncio.get_running_loop().time())
        try:
            await self._connect(self._link)
        except ConnectionLostError as exc:
            self._down(exc)  # not fatal: stream() raises device-offline and retries
        except BaseException:
            await self._link.close()
            raise

    async def _close(self) -> None:
        self._stop.set()
        link = self._link
        if link is not None:
            await link.close()

    # -- data ---------------------------------------------------------------------------
    async def _stream(self) -> AsyncIterator[Item]:
        while not self._stop.is_set():
            link = self._link
            if link is None:
                return
            if link.connected or link.backlog:
                items = await self._receive(link)
            else:
                items = await self._reconnect(link)
            for item in items:
                self._count("events")
                yield item

    async def _receive(self, link: MqttLink) -> list[Event]:
        """Handle one message (or time out), then whatever timers are due."""
        loop = asyncio.get_running_loop()
        deadline = self._tracker.next_deadline()
        wait = _TICK if deadline is None else min(_TICK, deadline - loop.time())
        items: list[Event] = []
        if wait <= 0 or link.backlog:
            # a backlog is read without suspending: let the loop run (paho's reads, other
            # tasks) between messages, so working through a flood never blocks it
            await asyncio.sleep(0)
        if wait > 0:
            try:
                async with asyncio.timeout(wait):
                    msg = await link.receive()
            except TimeoutError:
                pass
            except ConnectionLostError as exc:
                if self._stop.is_set() or link is not self._link:
                    return []
                return await self._lost(link, exc)
            else:
                payload = msg.payload
                data = payload if isinstance(payload, bytes) else bytes(str(payload), "utf-8")
                items = self._handle(msg.topic.value, data)
        return items + self._tracker.tick(loop.time(), time.time())

    def _handle(self, topic: str, payload: bytes) -> list[Event]:
        """One message -> events; a bad one is counted and logged, never raised."""
        try:
            parsed = self._parser.parse(topic, payload)
        except PayloadError as exc:
            self._count(exc.reason)
            self._record_error(f"{topic}: {exc}")
            self._rlog.warning(
                exc.reason, "%s: %s payload on %s: %s", self.instance, exc.reason, topic, exc
            )
            return []
        now, wall = asyncio.get_running_loop().time(), time.time()
        try:
            if isinstance(parsed, Ignored):
                self._count("ignored")
                return []
            if isinstance(parsed, Detection):
                self._count(f"messages_{parsed.format}")
                return self._tracker.detection(parsed, now, wall)
            self._count("messages_frigate")
            if isinstance(parsed, Snapshot):
                digest = self._blobs.put(parsed.jpeg)
                self._count("snapshots")
                return self._tracker.snapshot(parsed, digest, wall)
            assert isinstance(parsed, Availability)
            return self._tracker.availability(parsed, wall)
        except Exception as exc:  # a bug must cost one message, not the stream
            self._count("internal_errors")
            self._record_error(exc)
            self._rlog.warning("internal", "%s: failed on %s: %r", self.instance, topic, exc)
            return []

    # -- the broker connection ----------------------------------------------------------
    async def _connect(self, link: MqttLink) -> None:
        self._count("connect_attempts")
        refused = await link.connect()
        for topic in refused:
            self._count("subscribe_refused")
            self._record_error(f"broker refused the subscription to {topic!r}")
            _log.warning("%s: broker refused the subscription to %r", self.instance, topic)
        self._attempts = 0
        all_refused = refused and len(refused) == len(self.filters)
        self._set_state(DriverState.DEGRADED if all_refused else DriverState.ONLINE)

    async def _lost(self, link: MqttLink, why: ConnectionLostError) -> list[Event]:
        self._count("disconnects")
        await link.drop()
        self._down(why)
        return self._raise_fault()

    def _down(self, why: BaseException | str) -> None:
        self._record_error(why)
        self._reason = str(self._last_error)
        self._attempts = 0
        self._set_state(DriverState.OFFLINE)
        _log.warning("%s: broker %s: %s", self.instance, self.config.broker, self._reason)

    async def _reconnect(self, link: MqttLink) -> list[Event]:
        """One step of the reconnection loop: raise the fault, or wait and try once."""
        if self._fault is None:
            return self._raise_fault()
        await self._sleep(self._backoff())
        if self._stop.is_set():
            return []
        try:
            await self._connect(link)
        except ConnectionLostError as exc:
            self._attempts += 1
            self._record_error(exc)
            self._reason = str(self._last_error)
            return []
        self._count("reconnects")
        _log.info("%s: broker %s back", self.instance, self.config.broker)
        return self._clear_fault()

    def _backoff(self) -> float:
        """Exponential from reconnect_min, capped at reconnect_max, jittered to 50-100%."""
        cfg = self.config
        ceiling = min(cfg.reconnect_max, cfg.reconnect_min * 2.0 ** min(self._attempts, 32))
        return self._jitter.uniform(ceiling / 2.0, ceiling)

    async def _sleep(self, delay: float) -> None:
        """Sleep ``delay`` s, or less if the driver closes meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    def _raise_fault(self) -> list[Event]:
        if self._fault is not None:
            return []  # one occurrence until the broker is back
        self._count("broker_offline")
        self._fault = Event(
            kind=EventKind.DEVICE_OFFLINE,
            severity=Severity.TROUBLE,
            state=EventState.ACTIVE,
            source=self.instance,
            data={"broker": self.config.broker, "error": self._reason},
        )
        return [self._fault]

    def _clear_fault(self) -> list[Event]:
        fault, self._fault = self._fault, None
        return [] if fault is None else [fault.with_state(EventState.CLEARED)]
