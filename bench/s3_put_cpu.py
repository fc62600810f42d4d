"""SeaweedFS's CPU per PUT of a shot's PNG, by S3 client setting (issue 24, item 3).

Starts the SeaweedFS the tests and `storyboard up` start (processes.seaweed_argv), then puts
the simulated backend's PNG (about 400 KB, the size of an SD 1.5 frame's) with boto3 clients
of each variant in turn, round after round, and reads weed's CPU time (/proc/PID/stat) around
each batch; the idle rate measured between batches is taken out. Also shows the headers each
variant sends (checksum, payload hash, content encoding): what the server has to parse and
hash.

Run alone: .venv/bin/python bench/s3_put_cpu.py [--puts 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import harness

from gpu_daemon.images.simulated import png_bytes
from storyboard_contract.s3 import make_client


def variants(s3: Any) -> dict[str, Any]:
    """Clients by name: storyboard's own (make_client) and boto3's defaults before it."""
    import boto3
    from botocore.config import Config

    def raw(**config: Any) -> Any:
        return boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                            aws_secret_access_key=s3.secret_key, region_name="us-east-1",
                            config=Config(signature_version="s3v4",
                                          **{"s3": {"addressing_style": "path"}, **config}))

    return {
        "boto3 defaults (CRC32 when supported)": raw(),
        "checksums when_required": raw(request_checksum_calculation="when_required",
                                       response_checksum_validation="when_required"),
        "unsigned payload (CRC32 in a header)": raw(s3={"addressing_style": "path",
                                                        "payload_signing_enabled": False}),
        "storyboard make_client": make_client(s3.endpoint, s3.access_key, s3.secret_key,
                                              "us-east-1", "path"),
    }


# weed's Go runtime settings tried (environment of the weed process).
SERVER_VARIANTS: dict[str, dict[str, str]] = {
    "GOMAXPROCS=1": {"GOMAXPROCS": "1"},
    "GOGC=400": {"GOGC": "400"},
}


@contextlib.contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def headers_of(client: Any, bucket: str, body: bytes) -> dict[str, str]:
    """The headers a PutObject of body sends that decide the server's work."""
    seen: dict[str, str] = {}

    def grab(request: Any, **_: Any) -> None:
        for name, value in request.headers.items():
            lower = name.lower()
            if lower.startswith(("x-amz-checksum", "x-amz-content-sha256", "x-amz-trailer",
                                 "content-encoding", "x-amz-decoded", "content-md5")):
                seen[lower] = value.decode() if isinstance(value, bytes) else value

    client.meta.events.register("before-send.s3.PutObject", grab)
    client.put_object(Bucket=bucket, Key="probe/headers.png", Body=body,
                      ContentType="image/png")
    client.meta.events.unregister("before-send.s3.PutObject", grab)
    return {k: (v[:20] + "…" if len(v) > 24 else v) for k, v in sorted(seen.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=200, help="PUTs per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    body = png_bytes(680, 384)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        s3 = harness.start_s3(Path(tmp) / "s3")
        stack.callback(s3.proc.stop)
        clients = variants(s3)
        for name, client in clients.items():
            print(f"{name}: {headers_of(client, s3.bucket, body)}")
        # (weed, client) by variant: each client against the stack's weed, and the stack's
        # client against each of the other weeds.
        cases = {name: (s3, client) for name, client in clients.items()}
        for name, extra in SERVER_VARIANTS.items():
            with environment(extra):
                other = harness.start_s3(Path(tmp) / name)
            stack.callback(other.proc.stop)
            cases[f"weed with {name}"] = (other, other.client())
        per_put: dict[str, list[float]] = {name: [] for name in cases}
        idle: list[float] = []
        me: dict[str, list[float]] = {name: [] for name in cases}
        for server, client in cases.values():  # warm: connections, the volume's first writes
            for i in range(20):
                client.put_object(Bucket=server.bucket, Key=f"warm/{i}.png", Body=body)
        for rnd in range(args.rounds):
            for name, (server, client) in cases.items():
                pid, bucket = server.proc.pid, server.bucket
                before, wall, mine = harness.cpu_seconds(pid), time.perf_counter(), \
                    time.process_time()
                for i in range(args.puts):
                    client.put_object(Bucket=bucket, Key=f"r{rnd}/{name[:8]}/{i}.png",
                                      Body=body, ContentType="image/png")
                spent = harness.cpu_seconds(pid) - before
                elapsed = time.perf_counter() - wall
                me[name].append((time.process_time() - mine) / args.puts * 1000)
                # weed's idle CPU (heartbeats, its maintenance) over as long a quiet spell
                quiet = harness.cpu_seconds(pid)
                time.sleep(min(elapsed, 3.0))
                rate = (harness.cpu_seconds(pid) - quiet) / min(elapsed, 3.0)
                idle.append(rate)
                per_put[name].append((spent - rate * elapsed) / args.puts * 1000)
        print(f"\n{len(body)} bytes a PUT, {args.puts} PUTs × {args.rounds} rounds; "
              f"weed idle: {statistics.median(idle) * 1000:.1f} ms CPU/s")
        print("| variant | weed ms/PUT (median of rounds) | rounds | client ms/PUT |")
        print("|---|---|---|---|")
        for name in cases:
            rounds = ", ".join(f"{v:.2f}" for v in per_put[name])
            print(f"| {name} | {statistics.median(per_put[name]):.2f} | {rounds} | "
                  f"{statistics.median(me[name]):.2f} |")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
