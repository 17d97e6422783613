"""``python -m tests.provisioning.launcher provision ...``: edgectl plus one test driver.

The bundled drivers need their emulators; this ``tcp-probe`` driver only needs something
listening on a TCP port, so ``provision check`` and ``device add`` can be exercised from a
subprocess against a driver that really loads, validates options and probes.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from edgesdk import driver
from edgesdk.config import Field
from edgesdk.model import Item, Reading


class TcpProbeConfig(driver.DriverConfig):
    host: str = Field(default="127.0.0.1", description="host to connect to")
    port: int = Field(ge=1, le=65535, description="TCP port (1-65535)")


class TcpProbeDriver(driver.Driver[TcpProbeConfig]):
    """Yields one reading each time a TCP connection to host:port succeeds."""

    name = "tcp-probe"
    config_type = TcpProbeConfig

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _stream(self) -> AsyncIterator[Item]:
        for _ in range(1000):
            try:
                _, writer = await asyncio.open_connection(self.config.host, self.config.port)
            except OSError as exc:
                self._record_error(exc)
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            yield Reading(self.instance, "up", 1)
            await asyncio.sleep(0.5)


def main() -> None:
    driver.register("tcp-probe", TcpProbeDriver)
    from edgesdk.cli import _register, app

    _register(sys.argv[1:])
    app(args=sys.argv[1:], prog_name="edgectl")


if __name__ == "__main__":
    main()
