"""``edgectl demo``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    duration: Annotated[
        float, typer.Option(help="seconds to run (the man-down alarm needs ~40)")
    ] = 60.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="no dashboard; print the summary as JSON")
    ] = False,
    broker: Annotated[
        str | None,
        typer.Option(help="use this MQTT 3.1.1 broker (mqtt://host:port), not the embedded one"),
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="keep keys, config and store here")] = None,
    seed: Annotated[int, typer.Option(help="seed of every emulator (same seed, same run)")] = 1,
    stop_when_done: Annotated[
        bool, typer.Option(help="end as soon as every expected alarm has arrived verified")
    ] = False,
) -> None:
    """Run the whole stack on emulators: a fire drill, a firefighter down, smoke in the lobby.

    Exit 0 only if every expected alarm arrived signed and verified.
    """
    import logging

    from gateway.demo.dashboard import render, summary
    from gateway.demo.stack import Stack
    from gateway.logs import setup_logging

    setup_logging("error", "text")
    logging.getLogger("edgesdk").setLevel(logging.CRITICAL)
    live_ok = sys.stdout.isatty() and not as_json

    async def main() -> dict[str, object]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Stack(broker=broker, workdir=workdir, seed=seed) as stack:

            def refresh() -> None:
                if live is not None:
                    live.update(
                        render(
                            stack.state,
                            stack.gateway,
                            duration=duration,
                            broker=str(stack.broker_url),
                        )
                    )
                elif not as_json:
                    while stack.state.unprinted:
                        typer.echo(stack.state.unprinted.pop(0))

            live = None
            if live_ok:
                from rich.live import Live

                live = Live(
                    render(
                        stack.state, stack.gateway, duration=duration, broker=str(stack.broker_url)
                    ),
                    refresh_per_second=4,
                )
                live.start()
            run = asyncio.create_task(
                stack.run(duration, refresh=refresh, until_complete=stop_when_done)
            )
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait([run, waiter], return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                run.cancel()
            waiter.cancel()
            await asyncio.gather(run, return_exceptions=True)
            if live is not None:
                live.stop()
            return summary(stack.state, stack.gateway)

    from edgesdk.errors import EdgeError

    try:
        result = asyncio.run(main())
    except EdgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        from rich.console import Console

        console = Console()
        console.print("[bold]summary[/]")
        for key, value in result.items():
            console.print(f"  {key}: {value}")
        console.print(
            "[green]PASS[/]: every expected alarm arrived, signed and verified"
            if result["ok"]
            else f"[red]FAIL[/]: missing {result['missing']}"
        )
    raise typer.Exit(0 if result["ok"] else 1)
