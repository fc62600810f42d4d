"""The HTTP API's overhead per request (issue 11): `GET /api/tasks/{id}` under 50 concurrent
clients on loopback, p50 and p99 latency, against `storyboard serve` as a user runs it (its
own process, uvicorn, the API token set, so every request is authenticated).

The task: a storyboard task of 12 rendered shots in a real store (the task object is about
7 KB of JSON). Beside it, the same task object built in-process by LocalService.task, one call
at a time: what the request costs on top of the work it asks for. The clients are one asyncio
process (httpx, 50 connections kept open, each client sending its next request as soon as the
last one was answered); on a small machine they take CPU from the server, so the figures are
an upper bound.

Run alone: .venv/bin/python bench/api.py [--requests 4000] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

SHOTS = 12
WARM_UP = 200


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def hammer(url: str, token: str, requests: int, clients: int) -> tuple[list[float], float]:
    """`requests` GETs of `url` from `clients` concurrent clients; each one's latency (s) and
    the wall time of them all."""
    import httpx

    latencies: list[float] = []
    left = requests
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as client:

        async def one_client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                start = time.perf_counter()
                answer = await client.get(url)
                latencies.append(time.perf_counter() - start)
                assert answer.status_code == 200, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return latencies, time.perf_counter() - started


def run(requests: int = 4_000, clients: int = 50) -> dict[str, Any]:
    from fixtures_queue import storyboard_argv
    from scale import mark_rendered, planned_rows

    from storyboard_cli.config import load_config
    from storyboard_cli.service import LocalService
    from storyboard_cli.store import Store

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp_dir:
        tmp = Path(tmp_dir)
        config_path = tmp / "storyboard.toml"
        config_path.write_text('[store]\npath = "storyboard.db"\n', encoding="utf-8")
        store = Store(tmp / "storyboard.db")
        project = store.create_project("api", "A story. " * 50, "movie")
        task_id = store.create_task("storyboard", project["id"])["id"]
        store.save_plan(task_id, project["id"], planned_rows(task_id, SHOTS), with_renders=True)
        mark_rendered(store, task_id)
        store.close()

        service = LocalService(load_config(config_path, environ={}))
        service.task(task_id)
        in_process = []
        for _ in range(500):
            with harness.stopwatch() as t:
                body = service.task(task_id)
            in_process += t
        service.close()

        token = secrets.token_urlsafe(32)
        port = harness.services.free_port()
        server = harness.services.Process(
            "serve", [*storyboard_argv(), "serve", "--port", str(port), "--config",
                      str(config_path)], tmp / "serve.log",
            env={**os.environ, "STORYBOARD_API_TOKEN": token}, cwd=tmp).start()
        try:
            harness.wait_for(lambda: harness.services.http_ok(f"http://127.0.0.1:{port}/healthz"),
                             30, "storyboard serve")
            url = f"http://127.0.0.1:{port}/api/tasks/{task_id}"
            asyncio.run(hammer(url, token, WARM_UP, clients))
            latencies, wall = asyncio.run(hammer(url, token, requests, clients))
        finally:
            server.stop()
    return {
        "requests": requests, "clients": clients, "shots": SHOTS,
        "body_bytes": len(json.dumps(body, ensure_ascii=False).encode()),
        "p50_ms": quantile(latencies, 0.50) * 1000, "p99_ms": quantile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000, "per_s": requests / wall,
        "in_process_p50_ms": quantile(in_process, 0.50) * 1000,
    }


def markdown(r: dict[str, Any]) -> tuple[str, list[bool]]:
    rows = [["p50", f"{r['p50_ms']:.1f}"], ["p99", f"{r['p99_ms']:.1f}"],
            ["mean", f"{r['mean_ms']:.1f}"],
            ["LocalService.task in-process, one at a time (p50)",
             f"{r['in_process_p50_ms']:.2f}"]]
    text = (f"`GET /api/tasks/{{id}}` of a {r['shots']}-shot storyboard task "
            f"({r['body_bytes']:,} bytes of JSON), {r['requests']:,} requests from "
            f"{r['clients']} concurrent clients (one asyncio process, httpx) to `storyboard "
            "serve` (uvicorn, token set) on loopback:\n\n"
            + harness.table(["latency", "ms"], rows)
            + f"\n\n- API latency under {r['clients']} concurrent clients: p50 "
            f"{r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['per_s']:.0f} requests/s "
            "(no target set; the clients share the machine's cores with the server)\n")
    return text, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    print(markdown(run(args.requests, args.clients))[0])


if __name__ == "__main__":
    main()
