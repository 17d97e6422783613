"""Real parts for tests: a mosquitto broker on a free loopback port, free ports, paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["SHARED", "VECTORS", "Mosquitto", "free_port", "wait_port"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGESDK_SHARED", ROOT.parent / "shared"))
VECTORS = SHARED / "vectors"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts on host:port (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s: {last}")


def mosquitto_binary() -> str | None:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    return None


class Mosquitto:
    """A real mosquitto on 127.0.0.1, on a port kept across stop/start (broker flaps).

    ``tls`` is ``None`` for plain MQTT, or a dict with ``cafile``, ``certfile``,
    ``keyfile`` (server side); client certificates are then required.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        tls: dict[str, str] | None = None,
        persistence: bool = False,
        extra: str = "",
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed: apt-get install mosquitto")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.dir = Path(tempfile.mkdtemp(prefix="edgesdk-mosq-"))
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "max_queued_messages 0",
            "max_inflight_messages 0",
        ]
        if os.geteuid() == 0:
            # as root, mosquitto drops to the 'mosquitto' user, which cannot write our
            # private temp dir: stay the user we are
            import pwd

            lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
        if tls is not None:
            lines += [
                f"cafile {tls['cafile']}",
                f"certfile {tls['certfile']}",
                f"keyfile {tls['keyfile']}",
                "require_certificate true",
                "use_identity_as_username true",
                "tls_version tlsv1.2",
            ]
        if extra:
            lines.append(extra)
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None:
            return
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.host, self.port, timeout)
        except TimeoutError:
            self.stop()
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"mosquitto did not start: {log}") from None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
