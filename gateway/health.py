"""``/healthz`` (JSON) and ``/metrics`` (Prometheus text) on a loopback port.

The figures are gathered when asked (one status snapshot per request), so nothing on the
hot path updates a metric. The HTTP side is a few lines on ``asyncio.start_server``:
prometheus-client's own server runs in a thread and cannot see the gateway's event loop,
and we need a clean, awaitable shutdown; rendering uses prometheus-client
(:mod:`gateway.metrics`), imported on the first ``/metrics`` request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["HealthServer", "render_metrics"]

StatusFn = Callable[[], Awaitable[dict[str, Any]]]


def render_metrics(status: dict[str, Any]) -> bytes:
    """The Prometheus text of ``status``; prometheus-client is imported on the first call."""
    from gateway import metrics  # lazy: +1.4 MB, only once scraped

    return metrics.render(status)


class HealthServer:
    """Serves /healthz and /metrics until closed."""

    def __init__(self, host: str, port: int, status: StatusFn) -> None:
        self.host = host
        self.port = port
        self._status = status
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else "/"
            if path.startswith("/healthz"):
                status = await self._status()
                code = 200 if status["healthy"] else 503
                body = json.dumps(status, default=str, sort_keys=True).encode()
                ctype = "application/json"
            elif path.startswith("/metrics"):
                status = await self._status()
                code, body, ctype = 200, render_metrics(status), "text/plain; version=0.0.4"
            else:
                code, body, ctype = 404, b"not found\n", "text/plain"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
            date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
            head = (
                f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nDate: {date}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
