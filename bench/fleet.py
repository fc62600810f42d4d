"""One host feeding a fleet of simulated GPUs: where the host's ceiling is (issue 24, item 2).

The host is what `storyboard up` runs on a host machine: redis-server (AOF), SeaweedFS, one
SQLite store, `storyboard serve` and `storyboard worker` processes (``--workers-per-daemon``
per daemon, each worker rendering on its daemon). The GPU boxes are `gpu-daemon serve`
processes with the simulated backend (gpu_daemon/images/simulated.py: an H100's time for SD
1.5 at 20 steps, no CPU while "rendering", real PNG uploads), each on its own port; the first
``--frp`` of them are reached through a real stcp tunnel (frps and the visitor on the host, one
frpc per box), the others directly. Everything runs on this machine, so the daemons' own CPU
competes with the host's: it is measured apart and left out of the host's cost.

Each point (1, 2, 4, 8, 16 daemons; daemons and workers are added from one point to the next)
keeps the fleet busy with storyboard tasks of ``--shots-per-task`` shots, submitted as the
CLI submits them whenever fewer than a backlog are unfinished (enough queued windows for every
worker twice over), with ``--watchers-per-daemon`` web clients following a task each through
`serve`'s event stream (GET /api/tasks/{id}/events), as a writer watches a board. After a
warm-up (every daemon has rendered), the measured phase takes ``--seconds``:

- shots/s: shots recorded done in the store during the phase; ideal: the daemons'
  capacity, max_batch / (call + max_batch × image) each, when every window is full;
- duty cycle per daemon: its render_busy_s delta over the phase (/v1/status); images per
  call: its renders / pipeline_calls deltas;
- CPU per shot by process: utime + stime (+ children's, /proc/PID/stat) of each process and
  its children, before and after; the machine's total (/proc/stat) less everything this
  benchmark started is the other load on the machine (the noise);
- memory: each process's resident set at the end of the phase;
- Redis: commands per shot by name (INFO commandstats) and redis-server's read() calls per
  shot (/proc/PID/io; about one per request or pipeline a client sends: its round trips);
- the workers' own counts (bench/counted_worker.py: store writes and reads, Redis round trips,
  progress events, step writes, daemon requests) and CPU time by thread (/proc/PID/task);
- at the largest point (or ``--profile-at``), a py-spy profile (``--profile-s`` seconds,
  200 Hz, not pausing them) of the busiest workers, merged: where a worker's CPU goes.

Run alone: .venv/bin/python bench/fleet.py [--quick] [--sizes 1,2,4,8,16]
           [--workers-per-daemon 2] [--seconds 20] [--frp 1] [--watchers-per-daemon 1]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import procstat
from overhead import story

from storyboard_contract.config import QueueConfig

SIZES = (1, 2, 4, 8, 16)
QUICK_SIZES = (1, 2)
MAX_BATCH = 4
# The processes of the host, and the others (the simulated GPU boxes, this benchmark).
HOST = ("workers", "redis-server", "SeaweedFS", "serve", "frps + visitor")
ELSEWHERE = ("daemons (GPU boxes)", "frpc (GPU boxes)", "benchmark (clients, feeder)")
# A point whose throughput is under this share of the ideal has saturated.
SATURATED = 0.9
# Issue 24: the host's CPU per shot, and throughput within SATURATED of the ideal, up to this
# many daemons.
TARGET_HOST_MS = 5.0
TARGET_DAEMONS = 8


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...] = SIZES
    workers_per_daemon: int = 2
    seconds: float = 20.0
    frp: int = 1  # the first N daemons are behind the tunnel
    watchers_per_daemon: int = 1
    shots_per_task: int = 24
    profile_s: float = 15.0
    profile_at: int = 0  # the point (daemons) profiled; 0: the largest
    profiled_workers: int = 4
    warmup_s: float = 4.0
    call_ms: float = 100.0  # the simulated backend's defaults (an H100)
    image_ms: float = 100.0

    @property
    def daemon_capacity(self) -> float:
        """Shots a second one daemon renders when every window is full."""
        return MAX_BATCH / ((self.call_ms + MAX_BATCH * self.image_ms) / 1000)


QUICK = Settings(sizes=QUICK_SIZES, seconds=6.0, profile_s=5.0, warmup_s=2.0)


# --- the system -------------------------------------------------------------------------------


@dataclass
class Daemon:
    handle: Any  # fixtures_daemon.DaemonHandle
    url: str  # where its workers reach it: the tunnel's end, or its own port
    via: str  # "frp" or "direct"


@dataclass
class Fleet:
    """The host's services, the daemons and their workers; grows from point to point."""

    root: Path
    settings: Settings
    redis: Any = None
    s3: Any = None
    stack: Any = None  # fixtures_queue.QueueStack: the host's config, store and workers
    serve: Any = None
    serve_url: str = ""
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    tunnel: Any = None  # fixtures_stack.Tunnel
    daemons: list[Daemon] = field(default_factory=list)
    worker_daemon: dict[int, int] = field(default_factory=dict)  # worker pid -> daemon index
    worker_counts: dict[int, Path] = field(default_factory=dict)  # worker pid -> its counters

    def start_host(self) -> None:
        from fixtures_queue import write_stack
        from fixtures_serve import start_serve

        self.redis = harness.RedisServer(self.root / "redis").start()
        self.s3 = harness.start_s3(self.root / "s3")
        # The product's queue settings (heartbeats, retries), not the tests' short ones.
        queue_settings = {k: v for k, v in dataclasses.asdict(QueueConfig()).items()
                          if not k.endswith("_queue")}
        # No daemon of its own: each worker is given its daemon's URL and token.
        self.stack = write_stack(self.root / "host", self.redis.url, self.s3, "http://unset",
                                 "unset", queue=queue_settings,
                                 images={"width": 512, "height": 512})
        self.serve, self.serve_url = start_serve(self.stack, self.api_token)

    def grow(self, daemons: int) -> None:
        """Daemons (and the tunnel, the first time) and their workers up to `daemons`."""
        wanted = max(daemons, min(self.settings.frp, max(self.settings.sizes)))
        if len(self.daemons) < wanted:
            self._start_daemons(wanted)
        for index in range(daemons):
            have = sum(1 for d in self.worker_daemon.values() if d == index)
            for _ in range(self.settings.workers_per_daemon - have):
                self._start_worker(index)
        self._wait_for_workers()

    def _start_daemons(self, count: int) -> None:
        images = {"backend": "simulated", "max_batch": MAX_BATCH,
                  "simulated_call_ms": self.settings.call_ms,
                  "simulated_image_ms": self.settings.image_ms}
        first = len(self.daemons)

        def start(index: int) -> Any:
            return harness.start_daemon(self.root / f"daemon-{index}", self.s3, "simulated",
                                        images=images)

        # Two at a time: each loads its render process and upload pool (seconds of CPU).
        with ThreadPoolExecutor(2) as pool:
            handles = list(pool.map(start, range(first, count)))
        frp_urls: list[str] = []
        if first == 0 and self.settings.frp:
            frp_urls = self._start_tunnel(handles[: self.settings.frp])
        for offset, handle in enumerate(handles):
            index = first + offset
            if index < len(frp_urls):
                self.daemons.append(Daemon(handle, frp_urls[index], "frp"))
            else:
                self.daemons.append(Daemon(handle, handle.url, "direct"))

    def _start_tunnel(self, handles: Sequence[Any]) -> list[str]:
        """One stcp tunnel for these daemons, [frp] boxes style: frps and one visitor on the
        host, one frpc per GPU box. Returns each daemon's URL at the host's end."""
        from fixtures_stack import Tunnel, clean_env, stack_config, tunnel_secrets

        from storyboard_cli.stack import frp
        from storyboard_contract.config import load_config

        root = self.root / "frp"
        names = [f"gpu{i + 1}" for i in range(len(handles))]
        path = stack_config(root, "stcp", extra={"frp": {
            "boxes": names, "visitor_port": free_port_run(len(names)),
            "remote_port": free_port_run(len(names))}})
        env = {**clean_env(), **tunnel_secrets()}
        cfg = load_config(path, environ=env)
        frp.write_configs(cfg, "host", "stcp", root)
        self.tunnel = Tunnel(cfg, root, env)
        self.tunnel.start("frps")
        self.tunnel.start("visitor")
        for name, handle in zip(names, handles, strict=True):
            box_cfg = dataclasses.replace(
                cfg, daemon=dataclasses.replace(cfg.daemon, port=int(handle.url.rsplit(":", 1)[1])),
                frp=dataclasses.replace(cfg.frp, admin_port=harness.processes.free_port()))
            frp.write_configs(box_cfg, "gpu", "stcp", root / name, box_name=name)
            self.tunnel.start(f"frpc-{name}", root / name / frp.GPU_FILE)
        urls = [b.url("stcp") for b in frp.boxes(cfg)]
        for url in urls:
            harness.wait_for(lambda url=url: harness.processes.http_ok(f"{url}/healthz", 1.0),
                             60, f"the tunnel to {url}", interval=0.2)
        return urls

    def _start_worker(self, index: int) -> None:
        daemon = self.daemons[index]
        counts = self.root / "counts" / f"worker-{len(self.worker_daemon)}.json"
        counts.parent.mkdir(exist_ok=True)
        proc = self.stack.start_worker(
            argv=[sys.executable, str(Path(__file__).parent / "counted_worker.py")],
            env={"STORYBOARD_DAEMON_URL": daemon.url, "FLEET_COUNTS": str(counts),
                 "STORYBOARD_DAEMON_TOKEN": daemon.handle.token})
        self.worker_daemon[proc.pid] = index
        self.worker_counts[proc.pid] = counts

    def worker_threads(self, pid: int) -> dict[int, str]:
        """A worker's threads that its counters saw, by OS thread id."""
        try:
            known = json.loads(self.worker_counts[pid].read_text())["threads"]
        except (OSError, ValueError):
            return {}
        return {int(tid): name for tid, name in known.items()}

    def _wait_for_workers(self) -> None:
        from rq import Worker

        client = self.redis.client()
        pids = set(self.worker_daemon)
        try:
            harness.wait_for(lambda: pids <= {w.pid for w in Worker.all(connection=client)},
                             120, f"{len(pids)} workers to register", interval=0.2)
        except TimeoutError as exc:
            logs = "\n".join(f"--- {w.name}\n{w.log_tail(20)}" for w in self.stack.workers)
            raise TimeoutError(f"{exc}\n{logs}") from None
        finally:
            client.close()

    def groups(self) -> dict[str, list[int]]:
        """The processes of each part, by the pid at the top of each (children included)."""
        tunnel = self.tunnel.procs if self.tunnel else {}
        return {
            "workers": list(self.worker_daemon),
            "redis-server": [self.redis.proc.pid],
            "SeaweedFS": [self.s3.proc.pid],
            "serve": [self.serve.pid],
            "frps + visitor": [p.pid for n, p in tunnel.items() if n in ("frps", "visitor")],
            "daemons (GPU boxes)": [d.handle.proc.pid for d in self.daemons],
            "frpc (GPU boxes)": [p.pid for n, p in tunnel.items() if n.startswith("frpc-")],
            "benchmark (clients, feeder)": [os.getpid()],
        }

    def stop(self) -> None:
        for part in (self.stack and self.stack.stop_workers, self.serve and self.serve.stop,
                     self.tunnel and self.tunnel.stop,
                     *(d.handle.stop for d in self.daemons),
                     self.s3 and self.s3.proc.stop, self.redis and self.redis.stop):
            if part:
                with contextlib.suppress(Exception):
                    part()


def free_port_run(n: int) -> int:
    """The first of n consecutive free ports ([frp] boxes take visitor_port + i)."""
    for _ in range(200):
        base = harness.processes.free_port()
        if base + n >= 65535:
            continue
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


# --- load: the feeder and the watchers ---------------------------------------------------------


class Load:
    """Keeps `backlog` tasks unfinished (each task as the CLI submits it), and `watchers`
    clients each following the newest task not yet watched through serve's event stream."""

    def __init__(self, fleet: Fleet, backlog: int, watchers: int) -> None:
        self.fleet, self.backlog = fleet, backlog
        self.story = story(fleet.settings.shots_per_task)
        self.stop_event = threading.Event()
        self.to_watch: queue.LifoQueue[str] = queue.LifoQueue()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._feed, daemon=True)]
        self.threads += [threading.Thread(target=self._watch, daemon=True)
                         for _ in range(watchers)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=120)

    def _feed(self) -> None:
        store = self.fleet.stack.store()
        try:
            while not self.stop_event.is_set():
                for _ in range(self.backlog - len(store.unfinished_tasks())):
                    self.to_watch.put(self.fleet.stack.submit(self.story))
                self.stop_event.wait(0.1)
        except Exception as exc:  # noqa: BLE001 - reported with the point's figures
            self.errors.append(f"feeder: {type(exc).__name__}: {exc}")
        finally:
            store.close()

    def _watch(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.fleet.api_token}"}
        with httpx.Client(base_url=self.fleet.serve_url, headers=headers, timeout=120) as api:
            while not self.stop_event.is_set():
                try:
                    task_id = self.to_watch.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    with api.stream("GET", f"/api/tasks/{task_id}/events") as answer:
                        for _ in answer.iter_lines():
                            pass
                except httpx.HTTPError as exc:
                    self.errors.append(f"watcher: {type(exc).__name__}: {exc}")


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    cpu: dict[tuple[str, int], float]  # seconds, per (group, top process)
    machine_busy: float  # seconds, the whole machine
    done: int  # shots recorded done in the store
    daemons: list[dict[str, Any]]  # /v1/status of each daemon of the point
    redis_calls: dict[str, int]
    redis_reads: int
    counts: Counter[str]  # the workers' counters (counted_worker.py), summed
    parts: Counter[str]  # the workers' CPU seconds by part and thread (counted_worker.py)
    threads: dict[str, float]  # the workers' CPU seconds by thread: main, maintenance, other


def take_sample(fleet: Fleet, daemons: int) -> Sample:
    statuses = [d.handle.status() for d in fleet.daemons[:daemons]]
    client = fleet.redis.client()
    stats = client.info("commandstats")
    client.close()
    store = fleet.stack.store()
    done = store.conn.execute("select count(*) from renders where status = 'done'").fetchone()[0]
    store.close()
    return Sample(
        at=time.perf_counter(), cpu=process_cpu(fleet.groups()),
        machine_busy=procstat.machine_cpu_seconds()[0], done=done, daemons=statuses,
        redis_calls={k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()},
        redis_reads=procstat.io_syscalls(fleet.redis.proc.pid)[0],
        **worker_counts(fleet), threads=worker_thread_cpu(fleet, list(fleet.worker_daemon)))


def worker_counts(fleet: Fleet) -> dict[str, Counter[str]]:
    """The workers' counts and CPU seconds by part (counted_worker.py), summed."""
    counts: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    for path in fleet.worker_counts.values():
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
            counts.update(state["counts"])
            parts.update(state["cpu"])
    return {"counts": counts, "parts": parts}


# A worker's CPU by part: (label, the counted_worker parts it sums, or the thread whose CPU
# time less that of its parts it is).
WORKER_PARTS = (
    ("RQ's loop around the jobs", "main"),
    ("jobs' own code", ("job's own code (main)",)),
    ("store, from the jobs", ("store (main)",)),
    ("daemon client (HTTP, NDJSON, pydantic)", ("daemon client (main)",)),
    ("sweep_lost (lost tasks)", ("sweep_lost (maintenance)",)),
    ("reap_orphans (dead workers' jobs)", ("reap_orphans (maintenance)",)),
    ("enqueue_due (retries)", ("enqueue_due (maintenance)",)),
    ("store, from the maintenance", ("store (maintenance)",)),
    ("rest of the maintenance (liveness, ticks)", "maintenance"),
    ("other threads (RQ's pubsub, the counters)", "other"),
)


def worker_parts(parts: dict[str, float], threads: dict[str, float]) -> dict[str, float]:
    """The workers' CPU seconds by WORKER_PARTS."""
    found = {}
    for label, source in WORKER_PARTS:
        if isinstance(source, str):
            found[label] = threads.get(source, 0.0) - sum(
                v for k, v in parts.items() if k.endswith(f"({source})"))
        else:
            found[label] = sum(parts.get(k, 0.0) for k in source)
    return found


def thread_kind(pid: int, tid: int, names: dict[int, str]) -> str:
    if tid == pid:
        return "main"  # the jobs and RQ's loop (SimpleWorker: no fork per job)
    return "maintenance" if names.get(tid) == "storyboard-maintenance" else "other"


def worker_thread_cpu(fleet: Fleet, pids: Sequence[int]) -> dict[str, float]:
    """The workers' CPU seconds so far by thread kind (thread_kind)."""
    seconds: Counter[str] = Counter()
    for pid in pids:
        names = fleet.worker_threads(pid)
        with contextlib.suppress(OSError):
            for tid, cpu in procstat.thread_cpu_seconds(pid).items():
                seconds[thread_kind(pid, tid, names)] += cpu
    return dict(seconds)


def process_cpu(groups: dict[str, list[int]]) -> dict[tuple[str, int], float]:
    """CPU seconds of each top process of each group: with its waited-for children, and its
    live descendants (a daemon's render process and upload pool)."""
    children = procstat.children_map()
    seconds = {}
    for name, pids in groups.items():
        for pid in pids:
            mine = pid == os.getpid()  # not the services this process started
            total = 0.0
            for p in (pid, *(() if mine else procstat.descendants(pid, children))):
                with contextlib.suppress(OSError):
                    total += procstat.cpu_seconds(p, children=not mine and p == pid)
            seconds[(name, pid)] = total
    return seconds


def group_rss(groups: dict[str, list[int]]) -> dict[str, list[int]]:
    """Resident bytes of each top process of each group (with its descendants)."""
    children = procstat.children_map()
    sizes: dict[str, list[int]] = {}
    for name, pids in groups.items():
        for pid in pids:
            with contextlib.suppress(OSError):
                sizes.setdefault(name, []).append(sum(
                    procstat.rss_bytes(p) for p in (pid, *procstat.descendants(pid, children))))
    return sizes


def measure_point(fleet: Fleet, daemons: int) -> dict[str, Any]:
    """One point: grow the fleet, load it, warm up, measure, (profile), drain."""
    s = fleet.settings
    fleet.grow(daemons)
    workers = daemons * s.workers_per_daemon
    # Every worker can take a window, twice over, from the unfinished tasks.
    backlog = max(2, math.ceil(2 * workers * MAX_BATCH / s.shots_per_task)) + 1
    started = [d.handle.status()["renders"] for d in fleet.daemons[:daemons]]
    with Load(fleet, backlog, daemons * s.watchers_per_daemon) as load:
        warm = time.perf_counter() + s.warmup_s
        harness.wait_for(
            lambda: time.perf_counter() >= warm and all(
                d.handle.status()["renders"] > n
                for d, n in zip(fleet.daemons[:daemons], started, strict=True)),
            120, "every daemon to render", interval=0.5)
        load_before = os.getloadavg()[0]
        before = take_sample(fleet, daemons)
        time.sleep(s.seconds)
        after = take_sample(fleet, daemons)
        rss = group_rss(fleet.groups())
        profile = None
        if daemons == (s.profile_at or max(s.sizes)) and s.profile_s > 0:
            profile = profile_workers(fleet, s.profile_s, s.profiled_workers)
        load.stop()
        harness.wait_for(lambda: not _unfinished(fleet), 300, "the backlog to drain",
                         interval=0.2)
    if load.errors:
        raise RuntimeError("; ".join(load.errors[:3]))
    return summarize(fleet, daemons, backlog, before, after, rss, profile, load_before)


def _unfinished(fleet: Fleet) -> int:
    store = fleet.stack.store()
    try:
        return len(store.unfinished_tasks())
    finally:
        store.close()


def summarize(fleet: Fleet, daemons: int, backlog: int, before: Sample, after: Sample,
              rss: dict[str, list[int]], profile: dict[str, Any] | None,
              load_before: float) -> dict[str, Any]:
    s = fleet.settings
    wall = after.at - before.at
    shots = after.done - before.done
    by_process = {k: v - before.cpu.get(k, 0.0) for k, v in after.cpu.items()}
    cpu: Counter[str] = Counter()
    for (name, _), seconds in by_process.items():
        cpu[name] += seconds
    ours = sum(cpu.values())
    hottest = sorted(by_process.items(), key=lambda kv: -kv[1])[:6]
    machine = after.machine_busy - before.machine_busy
    per_daemon = []
    for d, a, b in zip(fleet.daemons, after.daemons, before.daemons, strict=False):
        calls = a["pipeline_calls"] - b["pipeline_calls"]
        renders = a["renders"] - b["renders"]
        per_daemon.append({"via": d.via, "duty": (a["render_busy_s"] - b["render_busy_s"]) / wall,
                           "images_per_call": renders / calls if calls else 0.0,
                           "renders": renders})
    calls = Counter({k: v - before.redis_calls.get(k, 0) for k, v in after.redis_calls.items()})
    workers = rss.get("workers", [])
    return {
        "daemons": daemons, "workers": daemons * s.workers_per_daemon, "backlog": backlog,
        "via_frp": sum(1 for d in per_daemon if d["via"] == "frp"),
        "wall_s": wall, "shots": shots, "shots_per_s": shots / wall,
        "ideal_per_s": daemons * s.daemon_capacity,
        "per_daemon": per_daemon,
        "cpu_ms_per_shot": {k: v / shots * 1000 for k, v in cpu.items()},
        "hottest": [(f"{name} (pid {pid})", seconds / wall) for (name, pid), seconds in hottest],
        "host_ms_per_shot": sum(cpu[k] for k in HOST) / shots * 1000,
        "cores": machine / wall, "ours_cores": ours / wall,
        "other_cores": max(0.0, machine - ours) / wall,
        "load_before": load_before,
        "rss_mib": {k: sum(v) / 2**20 for k, v in rss.items()},
        "worker_rss_mib": (sum(workers) / len(workers) / 2**20) if workers else 0.0,
        "redis_per_shot": {k: v / shots for k, v in calls.most_common() if v > 0},
        "redis_commands_per_shot": sum(calls.values()) / shots,
        "redis_reads_per_shot": (after.redis_reads - before.redis_reads) / shots,
        "counts_per_shot": {k: (v - before.counts.get(k, 0)) / shots
                            for k, v in sorted(after.counts.items())},
        "worker_parts_ms_per_shot": {
            k: v / shots * 1000 for k, v in worker_parts(
                {k: v - before.parts.get(k, 0.0) for k, v in after.parts.items()},
                {k: v - before.threads.get(k, 0.0) for k, v in after.threads.items()}).items()},
        "profile": profile,
    }


# --- the profile ---------------------------------------------------------------------------------

def profile_workers(fleet: Fleet, seconds: float, count: int) -> dict[str, Any]:
    """py-spy on the `count` busiest workers, merged by thread kind (main, maintenance). py-spy
    counts a thread whenever it is not blocked, waiting for a core included: on a saturated
    machine that is several times its CPU time, most of it right after a blocking call
    returns (a Redis reply), so the shares lean towards the calls that wait."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    busiest = sorted(fleet.worker_daemon, key=lambda pid: -procstat.cpu_seconds(pid))[:count]
    outputs = [fleet.root / f"profile-{pid}.txt" for pid in busiest]
    procs = [subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r",
                               "200", "--nonblocking", "--threads", "-F", "-f", "raw",
                               "-o", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for pid, out in zip(busiest, outputs, strict=True)]
    errors = [p.communicate(timeout=seconds + 60)[1].decode(errors="replace") for p in procs]
    stacks: dict[str, Counter[tuple[str, ...]]] = {}
    for out in outputs:
        for line in out.read_text().splitlines() if out.exists() else ():
            frames, _, samples = line.rpartition(" ")
            thread, _, rest = frames.partition(";")
            name = thread.split(": ", 1)[-1]
            kind = {"MainThread": "main", "storyboard-maintenance": "maintenance"}.get(name,
                                                                                       "other")
            stacks.setdefault(kind, Counter())[tuple(rest.split(";"))] += int(samples)
    if not stacks:
        return {"error": "py-spy recorded nothing: " + " ".join(e.strip() for e in errors)[-300:]}
    return {"workers": len(busiest), "seconds": seconds,
            "samples": sum(sum(c.values()) for c in stacks.values()),
            "top": {kind: top_functions(c) for kind, c in stacks.items() if kind != "other"}}


def top_functions(stacks: Counter[tuple[str, ...]], n: int = 12
                  ) -> dict[str, list[tuple[str, float]]]:
    """The functions with the most samples of their own, and with callees included."""
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, samples in stacks.items():
        own[stack[-1]] += samples
        for frame in set(stack):
            inclusive[frame] += samples
    own.pop("", None)  # a stack py-spy could not read
    # Frames nearly every sample of a thread goes through (the CLI, RQ's loop, the thread's
    # start) say nothing.
    telling = [(k, v / total) for k, v in inclusive.most_common() if v < 0.9 * total and k]
    return {"own": [(k, v / total) for k, v in own.most_common(n)], "total": telling[:n]}


# --- the benchmark -------------------------------------------------------------------------------


@contextlib.contextmanager
def fleet_of(settings: Settings) -> Iterator[Fleet]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        fleet = Fleet(Path(tmp), settings)
        try:
            fleet.start_host()
            yield fleet
        finally:
            fleet.stop()


def run(settings: Settings = Settings()) -> dict[str, Any]:
    points = []
    with fleet_of(settings) as fleet:
        for daemons in settings.sizes:
            points.append(measure_point(fleet, daemons))
            print(f"fleet: {daemons} daemon(s): {points[-1]['shots_per_s']:.1f} shots/s "
                  f"of {points[-1]['ideal_per_s']:.0f}", flush=True)
    return {"settings": dataclasses.asdict(settings), "points": points}


def _range(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return fmt.format(low) if abs(high - low) < 0.005 else \
        f"{fmt.format(low)}–{fmt.format(high)}"


def markdown(result: dict[str, Any]) -> tuple[str, list[bool]]:
    s, points = result["settings"], result["points"]
    capacity = MAX_BATCH / ((s["call_ms"] + MAX_BATCH * s["image_ms"]) / 1000)
    out = [
        f"Simulated daemons (SD 1.5 on an H100: {s['call_ms']:.0f} ms a call + "
        f"{s['image_ms']:.0f} ms an image, max_batch {MAX_BATCH}: {capacity:.1f} shots/s "
        f"each with full windows), {s['workers_per_daemon']} workers per daemon, tasks of "
        f"{s['shots_per_task']} shots, {s['watchers_per_daemon']} event-stream client(s) per "
        f"daemon; the first {s['frp']} daemon(s) through an stcp frp tunnel, the others direct. "
        f"Each point measured over {s['seconds']:.0f} s after a warm-up; everything, the "
        "daemons included, on this machine.\n",
    ]
    rows = []
    for p in points:
        rows.append([
            p["daemons"], p["workers"], f"{p['shots_per_s']:.1f}", f"{p['ideal_per_s']:.0f}",
            f"{p['shots_per_s'] / p['ideal_per_s']:.2f}",
            _range([d["duty"] for d in p["per_daemon"]]),
            _range([d["images_per_call"] for d in p["per_daemon"]]),
            f"{p['host_ms_per_shot']:.1f}",
            f"{1000 / p['host_ms_per_shot']:.0f}" if p["host_ms_per_shot"] else "-",
            f"{p['cores']:.2f} ({p['other_cores']:.2f})", f"{p['load_before']:.1f}",
        ])
    out.append(harness.table(
        ["daemons", "workers", "shots/s", "ideal", "× ideal", "duty cycle (min–max)",
         "images/call", "host CPU ms/shot", "shots/s per host core", "cores busy (not ours)",
         "load avg"], rows))
    out.append(
        "\nHost CPU per shot: the workers, redis-server, SeaweedFS, `serve`, frps and the "
        "visitor, over the shots recorded in the phase; shots/s per host core is its inverse, "
        "the ceiling of a host whose cores do nothing else. Cores busy: the whole machine's "
        "CPU over the phase (2 cores: 2.00 is all of it), in brackets the part no process of "
        "this benchmark used (other work on the machine).\n")
    names = [*HOST, *ELSEWHERE]
    out.append("CPU per shot by process (ms), and memory at the end of each point (MiB):\n")
    out.append(harness.table(
        ["daemons", *names, "host total", "host memory", "worker memory (each)"],
        [[p["daemons"], *(f"{p['cpu_ms_per_shot'].get(n, 0):.2f}" for n in names),
          f"{p['host_ms_per_shot']:.2f}",
          f"{sum(p['rss_mib'].get(n, 0) for n in HOST):.0f}",
          f"{p['worker_rss_mib']:.0f}"] for p in points]))
    last = points[-1]
    top = list(last["redis_per_shot"].items())[:12]
    out.append(
        f"\nRedis at {last['daemons']} daemons: {last['redis_commands_per_shot']:.1f} commands "
        f"and {last['redis_reads_per_shot']:.1f} client reads (round trips) per shot; the "
        "commands per shot, most first:\n\n"
        + harness.table(["command", "per shot"], [[f"`{k}`", f"{v:.2f}"] for k, v in top]))
    counted = sorted({k for p in points for k in p["counts_per_shot"]})
    out.append(
        "\nWhat the workers did per shot (bench/counted_worker.py; main: the thread of the jobs "
        "and RQ's loop):\n\n" + harness.table(
            ["counted", *(str(p["daemons"]) for p in points)],
            [[k, *(f"{p['counts_per_shot'].get(k, 0):.2f}" for p in points)] for k in counted]))
    out.append(
        "\nThe workers' CPU per shot by part (ms; each thread's own CPU clock around each part, "
        "less the parts nested in it; RQ's loop and the rest of the maintenance are their "
        "thread's CPU time less the parts'):\n\n" + harness.table(
            ["part", *(str(p["daemons"]) for p in points)],
            [[label, *(f"{p['worker_parts_ms_per_shot'][label]:.2f}" for p in points)]
             for label, _ in WORKER_PARTS]))
    profiled = next((p for p in points if p.get("profile")), None)
    profile = profiled["profile"] if profiled else None
    if profile and "error" not in profile:
        out.append(
            f"\nProfile (py-spy at 200 Hz, not pausing them, of the {profile['workers']} "
            f"busiest workers at {profiled['daemons']} daemons for {profile['seconds']:.0f} s, "
            f"{profile['samples']} samples). py-spy counts a thread whenever it is not blocked, "
            "waiting for a core included, so on a busy machine the functions right after a "
            "blocking call (a Redis reply) get more than their CPU time; the parts above are "
            "the CPU time.")
        for kind, top in profile["top"].items():
            rows = [[f"`{a}`", f"{x:.1%}", f"`{b}`", f"{y:.1%}"]
                    for (a, x), (b, y) in zip(top["own"], top["total"], strict=False)]
            out.append(f"\nThe {kind} thread's samples:\n\n" + harness.table(
                ["function (own)", "share", "function (with callees)", "share"], rows))
    elif profile:
        out.append(f"\nNo profile: {profile['error']}")
    out.append(f"\nThe busiest processes at {last['daemons']} daemons (cores, with children): "
               + ", ".join(f"{k} {v:.2f}" for k, v in last["hottest"]) + ".")
    out.append("\n" + saturation(points))
    lines, met = targets(points)
    out.append("\n" + "\n".join(f"- {line}" for line in lines))
    return "\n".join(out) + "\n", met


def targets(points: list[dict[str, Any]]) -> tuple[list[str], list[bool]]:
    """Issue 24's targets for the host: its CPU per shot, and throughput near the ideal,
    up to TARGET_DAEMONS daemons (the largest such point: the host's cost per shot grows with
    the fleet)."""
    upto = [p for p in points if p["daemons"] <= TARGET_DAEMONS]
    if not upto:
        return [f"no point of at most {TARGET_DAEMONS} daemons: targets not measured"], []
    largest = max(upto, key=lambda p: p["daemons"])
    cpu, ok_cpu = harness.verdict(
        f"host CPU per shot at {largest['daemons']} daemons (ms)",
        largest["host_ms_per_shot"], TARGET_HOST_MS, False)
    worst = min(upto, key=lambda p: p["shots_per_s"] / p["ideal_per_s"])
    ratio, ok_ratio = harness.verdict(
        f"throughput / ideal, worst of 1–{largest['daemons']} daemons (at {worst['daemons']})",
        worst["shots_per_s"] / worst["ideal_per_s"], SATURATED, True)
    without_s3 = largest["host_ms_per_shot"] - largest["cpu_ms_per_shot"].get("SeaweedFS", 0)
    note = (f"for reference, the host without the bucket (SeaweedFS) at {largest['daemons']} "
            f"daemons: {without_s3:.2f} ms of CPU a shot (no target)")
    return [cpu, ratio, note], [ok_cpu, ok_ratio]


def saturation(points: list[dict[str, Any]]) -> str:
    """Where the host stops keeping up, and what the machine was doing then."""
    first = next((p for p in points if p["shots_per_s"] < SATURATED * p["ideal_per_s"]), None)
    best = max(points, key=lambda p: p["shots_per_s"])
    if first is None:
        return (f"- No saturation up to {points[-1]['daemons']} daemons: every point within "
                f"{SATURATED:.0%} of the ideal (best {best['shots_per_s']:.1f} shots/s).")
    shares = sorted(((n, first["cpu_ms_per_shot"].get(n, 0) / 1000 * first["shots_per_s"])
                     for n in (*HOST, *ELSEWHERE)), key=lambda x: -x[1])
    busiest = ", ".join(f"{n} {c:.2f}" for n, c in shares[:4])
    return (f"- Saturation: from {first['daemons']} daemons the fleet gets "
            f"{first['shots_per_s']:.1f} shots/s of {first['ideal_per_s']:.0f} "
            f"({first['shots_per_s'] / first['ideal_per_s']:.2f} × ideal), the machine's cores "
            f"{first['cores']:.2f} busy (cores used: {busiest}; others' work "
            f"{first['other_cores']:.2f}); the most it delivered was {best['shots_per_s']:.1f} "
            f"shots/s, at {best['daemons']} daemons. The host's own cost was "
            f"{first['host_ms_per_shot']:.1f} ms of CPU a shot: "
            f"{1000 / first['host_ms_per_shot']:.0f} shots/s per host core.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 2 daemons, short phases")
    parser.add_argument("--sizes", help="daemons at each point, e.g. 1,1,2,4 (default "
                        f"{','.join(map(str, SIZES))})")
    default = Settings()
    for name in ("workers_per_daemon", "seconds", "frp", "watchers_per_daemon",
                 "shots_per_task", "profile_s", "profile_at", "call_ms", "image_ms"):
        kind = type(getattr(default, name))
        parser.add_argument("--" + name.replace("_", "-"), type=kind)
    args = parser.parse_args()
    settings = QUICK if args.quick else default
    chosen = {k: v for k, v in vars(args).items() if v is not None and k not in ("quick",
                                                                                  "sizes")}
    if args.sizes:
        chosen["sizes"] = tuple(int(x) for x in args.sizes.split(","))
    settings = dataclasses.replace(settings, **chosen)
    print(markdown(run(settings))[0])


if __name__ == "__main__":
    main()
