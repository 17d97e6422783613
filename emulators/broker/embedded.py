"""An MQTT broker inside the current event loop, so a demo or a test needs nothing installed.

It wraps amqtt's broker (the only maintained pure-Python broker) instead of writing one.
amqtt 0.12 speaks **MQTT 3.1.1 only**: a client asking for MQTT 5 gets CONNACK 0x01
(unacceptable protocol version) and MQTT 3.1 (``MQIsdp``) is refused outright. Clients of
this broker must therefore select 3.1.1; use mosquitto for MQTT 5 features (shared
subscriptions, properties).

We accept the TCP connections ourselves and hand each stream to amqtt through its
*external listener* API (``Broker.external_connected``) rather than letting amqtt bind:
that way port 0 gives a kernel-chosen free port we can read back without a
find-then-bind race or reaching into amqtt internals, the socket is bound to loopback
only, and every connection task is ours to cancel and await on exit, so nothing leaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any, Self

from edgesdk.errors import ConfigError, ConnectionLostError

__all__ = ["MQTT_VERSIONS", "EmbeddedBroker"]

MQTT_VERSIONS: tuple[str, ...] = ("3.1.1",)
"""MQTT protocol versions the embedded broker (amqtt 0.12) accepts."""

_LISTENER = "default"
_log = logging.getLogger(__name__)

# amqtt logs every client that goes away without DISCONNECT at WARNING/ERROR, some with a
# traceback; for an emulator those are expected events, not problems.
_NOISY_LOGGERS = ("amqtt", "transitions")


def _quiet_amqtt() -> None:
    """Raise amqtt's log threshold, unless the application configured it itself."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)


def _broker_class() -> Any:
    """amqtt's Broker with one fix, built on first use so importing us stays cheap.

    amqtt 0.12.1, on every CONNECT, sends the new client the retained messages matching
    *every client's* subscriptions (it loops over all filters in the broker), so a client
    receives topics it never subscribed to, and a subscriber gets a retained message
    twice. We only let retained messages through for filters the session itself holds,
    which is what MQTT 3.1.1 (3.3.1-6) asks for.
    """
    from amqtt.broker import Broker

    class _Broker(Broker):  # type: ignore[misc]
        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            holders = self._subscriptions.get(subscription[0], ())
            if any(held.client_id == session.client_id for held, _qos in holders):
                await super()._publish_retained_messages_for_subscription(subscription, session)

    return _Broker


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"must be a loopback address (got {host!r})",
            key="host",
            fix="use 127.0.0.1: the embedded broker allows anonymous clients, so it never "
            "listens beyond this machine",
        )


class EmbeddedBroker:
    """amqtt's broker on a loopback port, as an ``async with`` object.

    ``port=0`` picks a free port; read it back from :attr:`port` or :attr:`url` once
    entered. QoS 0/1/2, retained messages and last wills work as in any 3.1.1 broker.
    Every client is accepted without credentials (loopback only).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> None:
        _check_loopback(host)
        if not 0 <= port <= 65535:
            raise ConfigError(f"must be 0..65535 (got {port})", key="port", fix="use 0 for any")
        self.host = host
        self._requested_port = port
        self._quiet = quiet
        self._port: int | None = None
        self._server: asyncio.Server | None = None
        self._broker: Any = None
        self._connections: set[asyncio.Task[Any]] = set()
        self.connections_total = 0

    @property
    def port(self) -> int:
        """The port actually listened on (known once started)."""
        if self._port is None:
            raise RuntimeError("broker is not running")
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://host:port`` for clients."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def connections(self) -> int:
        """Client connections open right now."""
        return len(self._connections)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {
                # "external": we own the socket; bind is informational only for amqtt.
                _LISTENER: {"type": "external", "bind": f"{self.host}:{self._requested_port}"}
            },
            # Only our accept-all auth (see auth.py: keeps persistent sessions working);
            # no $SYS plugin (a periodic task, psutil), no packet/event loggers (noise).
            "plugins": {"emulators.broker.auth.LoopbackAuthPlugin": {}},
            # Drop disconnected persistent sessions after an hour so memory stays bounded.
            "session_expiry_interval": 3600,
        }

    async def start(self) -> None:
        """Bind, start amqtt, accept clients."""
        if self._server is not None:
            return
        from amqtt.errors import AMQTTError

        if self._quiet:
            _quiet_amqtt()
        try:
            broker = _broker_class()(self._config())
            await broker.start()
        except (AMQTTError, ValueError) as exc:
            raise ConfigError(f"amqtt refused the configuration: {exc}", key="broker") from exc
        self._broker = broker
        try:
            server = await asyncio.start_server(
                self._accept, self.host, self._requested_port, reuse_address=True
            )
        except OSError as exc:
            await broker.shutdown()
            self._broker = None
            raise ConnectionLostError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc}"
            ) from exc
        self._server = server
        self._port = int(server.sockets[0].getsockname()[1])
        _log.info("embedded broker listening on %s", self.url)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter

        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections_total += 1
        try:
            if self._broker is None:
                return
            await self._broker.external_connected(
                StreamReaderAdapter(reader), StreamWriterAdapter(writer), _LISTENER
            )
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            _log.debug("client connection ended: %r", exc)
        except Exception:
            # amqtt raising out of a connection handler must not kill the broker, and
            # the message is wanted: it means a broker bug, not a client going away.
            _log.exception("amqtt failed while serving a client")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._connections.discard(task)

    async def stop(self) -> None:
        """Stop accepting, end every session, close every socket; idempotent."""
        server, self._server = self._server, None
        broker, self._broker = self._broker, None
        if server is not None:
            server.close()
        if broker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(broker.shutdown(), timeout=10)
        pending = list(self._connections)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
