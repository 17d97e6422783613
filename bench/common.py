"""What every benchmark shares: machine facts, the JSON envelope, real brokers and PKI."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PACKAGES = ("edgesdk", "cbor2", "cryptography", "pymodbus", "aiomqtt", "paho-mqtt", "amqtt")


def machine() -> dict[str, Any]:
    """The facts a figure needs to be read: cores, CPU, Python, package versions."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pkgs = {}
    for name in PACKAGES:
        try:
            pkgs[name] = version(name)
        except PackageNotFoundError:
            pkgs[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": pkgs,
    }


def result(
    name: str,
    figures: dict[str, Any],
    settings: dict[str, Any],
    targets: dict[str, Any] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    return {
        "benchmark": name,
        "figures": figures,
        "targets": targets or {},
        "settings": settings,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notes": notes,
    }


def emit(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, sort_keys=True), flush=True)
    else:
        print(json.dumps(obj, indent=2, sort_keys=True), flush=True)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_fsync(fd: int) -> float:
    """Append 4 KiB to ``fd`` and return how long its fsync took, in seconds: the disk
    probe of ``bench all``'s settling and of ``alarm-latency``'s ``disk_fsync_4k``."""
    os.write(fd, bytes(4096))
    t = time.perf_counter()
    os.fsync(fd)
    return time.perf_counter() - t


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


@contextlib.contextmanager
def mosquitto(tls: dict[str, str] | None = None, persistence: bool = False) -> Iterator[Any]:
    from tests.support import Mosquitto

    with Mosquitto(tls=tls, persistence=persistence) as broker:
        yield broker
