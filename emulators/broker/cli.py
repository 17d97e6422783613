"""``edgectl emulate broker``: an MQTT 3.1.1 broker on loopback, nothing to install."""

from __future__ import annotations

import typer

__all__ = ["broker"]


def broker(
    host: str = typer.Option("127.0.0.1", "--host", help="Loopback address to listen on."),
    port: int = typer.Option(1883, "--port", help="TCP port; 0 picks a free one."),
    duration: float | None = typer.Option(
        None, "--duration", help="Seconds to run (default: until Ctrl-C or SIGTERM)."
    ),
) -> None:
    """Run an embedded MQTT 3.1.1 broker (amqtt); prints {"host", "port", "url"}."""
    from edgesdk.errors import EdgeError
    from emulators.broker.embedded import EmbeddedBroker
    from emulators.runner import run

    try:
        emulator = EmbeddedBroker(host=host, port=port)
        run(
            emulator,
            lambda b: {"host": b.host, "port": b.port, "url": b.url},
            duration=duration,
        )
    except EdgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
