"""What both benchmark consumers share: subscribe (QoS 1, persistent session), verify every
batch, drop the ``state`` stream and batches already seen, and hand on the rest.

``bench.consumer_worker`` and ``bench.tb_consumer`` differ only in what they count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt

from edgesdk.batch import Batch
from edgesdk.verify import StreamTracker, Verifier

__all__ = ["add_arguments", "verified"]


def add_arguments(p: argparse.ArgumentParser, *, client_id: str, tls: bool) -> None:
    """The broker, topic, trust and session options both consumers take."""
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", default="edge/v1/#")
    p.add_argument("--signing-cert", required=True)
    p.add_argument("--ca", required=tls)
    p.add_argument("--cert", required=tls)
    p.add_argument("--key", required=tls)
    p.add_argument("--client-id", default=client_id)


async def verified(
    args: argparse.Namespace,
    stats: dict[str, int],
    tracker: StreamTracker,
    seen: set[tuple[str, int]],
    *,
    reconnect: bool,
) -> AsyncIterator[tuple[float, Batch, list[Any]]]:
    """``(time verified, batch, sequence anomalies)`` for each new verified batch.

    Counts ``connects``, ``invalid`` and ``duplicates`` in ``stats``; prints
    ``{"ready": true}`` once first subscribed. With ``reconnect``, a lost broker is retried
    every 50 ms (the outage scenario); without, the error ends the stream.
    """
    verifier = Verifier.from_cert_files([args.signing_cert])
    tls = None
    if args.ca:
        tls = ssl.create_default_context(cafile=args.ca)
        tls.load_cert_chain(args.cert, args.key)
    ready = False
    while True:
        try:
            async with aiomqtt.Client(
                "127.0.0.1",
                args.port,
                tls_context=tls,
                identifier=args.client_id,
                clean_session=False,
                protocol=aiomqtt.ProtocolVersion.V311,
                max_queued_incoming_messages=0,
            ) as client:
                stats["connects"] += 1
                await client.subscribe(args.topic, qos=1)
                if not ready:
                    ready = True
                    print(json.dumps({"ready": True}), flush=True)
                async for msg in client.messages:
                    try:
                        b = verifier.verify(bytes(msg.payload))
                    except Exception:
                        stats["invalid"] += 1
                        continue
                    now = time.time()  # verified: latencies end here, not at arrival
                    if b.stream == "state":
                        continue
                    key = (b.stream, b.seq)
                    if key in seen:
                        stats["duplicates"] += 1
                        continue
                    seen.add(key)
                    yield now, b, tracker.observe(b)
        except aiomqtt.MqttError:
            if not reconnect:
                raise
            await asyncio.sleep(0.05)  # the broker is away: try again soon
