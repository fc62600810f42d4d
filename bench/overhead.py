"""Overhead per shot and GPU duty cycle (issue 6, items 1 and 2).

The same N shots (a story of N sentences, planned by the rules planner) are rendered

  a   by the image backend in this process (no HTTP, no PNG, no upload);
  b   through the daemon's HTTP API directly (the worker's DaemonClient, NDJSON progress,
      PNG encoding, upload to SeaweedFS, presigning), one request after another;
  b'  the same through the FRP tunnel (stcp visitor -> frps -> frpc -> daemon);
  c   the full path: `storyboard generate` (a CLI process) -> Redis -> plan job -> render
      jobs -> `storyboard worker` (1 or 2 processes) -> tunnel -> daemon -> S3 -> store.

Services come from `storyboard up`'s own supervisor (storyboard_cli.stack.supervisor, stcp
tunnel, on free ports in a temp folder). The workers are the stack's worker definition started with
queue names of their own, so the 1-worker and 2-worker sets can both stay up and the
variants can alternate round by round: each round runs every variant once, in a rotated
order, and each figure is the median over rounds of a ratio measured within one round.

Per shot:
  a, b, b'  the median per-shot time; overhead = median of (request wall - the daemon's
            render time for that request).
  c         the render phase (below) over N: render jobs render windows of shots that
            complete together, so gaps between completions say nothing per shot; overhead =
            (the phase - the daemon's render time during it, render_busy_s delta) / N.
Duty cycle (c): render_busy_s delta over the render phase, i.e. from the first render job's
enqueue to the last one's end, when the render queue was non-empty.
Images per pipeline call (c): the daemon's renders / pipeline_calls deltas (/v1/status).

Run alone: .venv/bin/python bench/overhead.py [--shots 40] [--rounds 3] [--backend sketch]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import median, ms

from storyboard_cli.stack import processes
from storyboard_contract.config import QueueConfig

BACKENDS: dict[str, dict[str, Any]] = {
    # The product's default panel size for the sketch backend.
    "sketch": {"backend": "sketch", "width": 512, "height": 512},
    "diffusers": {"backend": "diffusers", "width": 64, "height": 64, "steps": 4,
                  "max_batch": 4},
}
WORKER_SETS = (1, 2)
STYLE = "movie"
TARGET_OVERHEAD_MS = 20.0
TARGET_DUTY = 0.95
# Images per pipeline call on the full path, as a share of the daemon's max_batch.
TARGET_CALL_SHARE = 0.8

_SUBJECTS = ["the keeper", "a gull", "the old boat", "Mara", "the lantern", "a stranger",
             "the storm", "the harbour master", "two children", "the lighthouse"]
_ACTIONS = ["climbs the spiral stairs slowly", "watches the waves break on the rocks",
            "drifts past the broken pier", "waits by the window with a candle",
            "swings in the wind above the door", "walks up the hill through the rain",
            "rolls in from the grey sea", "counts the boats coming home",
            "run along the wet sand laughing", "turns its great lamp towards the ships"]


def story(n: int) -> str:
    """n sentences, one paragraph each and long enough never to be merged: n shots."""
    lines = []
    for i in range(n):
        subject, action = _SUBJECTS[i % len(_SUBJECTS)], _ACTIONS[(i * 3) % len(_ACTIONS)]
        lines.append(f"In the {i + 1}th hour of the night {subject} {action}, "
                     "while the bell of the village rings far away.")
    return "\n\n".join(lines)


@dataclass
class Pass:
    """One variant rendering the N shots once."""

    variant: str
    n: int
    wall_s: float  # a, b: the loop; c: the render phase (queue non-empty)
    per_shot_s: float
    overhead_s: float
    busy_s: float = 0.0  # the daemon's render time during the pass (not for a)
    calls: int = 0  # the daemon's pipeline calls during the pass
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.n / self.wall_s


# --- the system under test --------------------------------------------------------------------


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    # The stack reads .env from the config's folder and the current one: make them the same.
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


class System:
    """A local stack (no workers) plus worker sets with queues of their own, and the
    in-process backend and clients the benchmark compares it with."""

    def __init__(self, root: Path, backend: str, n: int) -> None:
        from fixtures_stack import stack_config

        self.root, self.backend_name, self.n = root, backend, n
        images = dict(BACKENDS[backend])
        if backend == "diffusers":
            from gpu_daemon.testing import build_tiny_pipeline

            images["model"] = str(build_tiny_pipeline(root / "tiny-sd"))
        # The product's queue settings, not the tests' short ones.
        queue = {k: v for k, v in dataclasses.asdict(QueueConfig()).items()
                 if not k.endswith("_queue")}
        self.config_path = stack_config(
            root / "stack", mode="stcp", workers=1,
            extra={"images": images, "planner": {"max_shots": n}, "queue": queue},
        )
        self.workers: dict[int, list[processes.Process]] = {}
        self.stack: Any = None

    # -- start / stop --

    def start(self) -> None:
        from storyboard_cli.stack.supervisor import load_stack
        from storyboard_cli.store import Store
        from storyboard_cli.tasks.daemon_client import DaemonClient
        from storyboard_cli.tasks.jobs import connect_redis

        with _cwd(self.config_path.parent):
            self.stack, _ = load_stack(self.config_path, environ=dict(os.environ),
                                       generate=True)
            statuses = self.stack.up(workers=0)  # ours, with queues of their own
        bad = [s for s in statuses if not s.ok]
        if bad:
            raise RuntimeError("storyboard up failed: " + "; ".join(
                f"{s.name}: {s.state} {s.detail}\n{s.log_tail}" for s in bad))
        self.cfg = self.stack.cfg
        self.redis_url = self.stack.redis_url()
        self.redis = connect_redis(self.redis_url)
        self.store = Store(self.cfg.store_path)
        direct = dataclasses.replace(self.cfg.daemon, url=self.stack.daemon_local_url)
        tunnel = dataclasses.replace(self.cfg.daemon, url=self.stack.tunnel_url)
        self.direct, self.tunnel = DaemonClient(direct), DaemonClient(tunnel)
        for k in WORKER_SETS:
            self._start_workers(k)
        self._load_backend()

    def stop(self) -> None:
        procs = [p for ws in self.workers.values() for p in ws]
        # Signal every worker first: each takes about a second to leave.
        for p in procs:
            if p.alive():
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.stop()
        for client in ("direct", "tunnel"):
            if hasattr(self, client):
                getattr(self, client).close()
        if self.stack is not None:
            self.stack.down()

    def queue_env(self, k: int) -> dict[str, str]:
        return {"STORYBOARD_QUEUE_PLAN_QUEUE": f"bench-plan-{k}w",
                "STORYBOARD_QUEUE_RENDER_QUEUE": f"bench-render-{k}w"}

    def _start_workers(self, k: int) -> None:
        """The stack's own worker processes (argv, environment, tunnel URL), k of them,
        on queues only they listen to."""
        from rq import Worker

        parts = [p for p in self.stack.parts(self.redis_url, k) if p.name.startswith("worker-")]
        procs = self.workers.setdefault(k, [])  # recorded before waiting: stop() finds them
        for p in parts:
            procs.append(processes.Process(
                f"{k}w-{p.name}", p.argv, self.root / "logs" / f"{k}w-{p.name}.log",
                env={**(p.env or {}), **self.queue_env(k)}, cwd=self.cfg.base_dir).start())
        pids = {p.pid for p in procs}
        harness.wait_for(
            lambda: pids <= {w.pid for w in Worker.all(connection=self.redis)}, 60,
            f"{k} worker(s) to register", interval=0.1)

    def _load_backend(self) -> None:
        from gpu_daemon.app import Jobs
        from gpu_daemon.images import check_model_settings, make_backend
        from gpu_daemon.images.process import LoadedBackend
        from gpu_daemon.planner.rules import RulesPlanner
        from storyboard_contract.wire import RenderRequest, shot_seed

        self.backend = make_backend(self.cfg)
        shots = RulesPlanner().plan(story(self.n), STYLE, self.n).shots
        assert len(shots) == self.n, f"planned {len(shots)} shots, wanted {self.n}"
        task_id = str(uuid.uuid4())
        self.requests = [
            RenderRequest(project_id=1, shot_id=s.index + 1, task_id=task_id, index=s.index,
                          prompt=s.prompt, negative_prompt=s.negative_prompt,
                          description=s.description, camera=s.camera, style=STYLE,
                          seed=shot_seed(task_id, s.index))
            for s in shots
        ]
        # The daemon's own request -> job translation (style, token fitting, defaults).
        jobs = Jobs(self.cfg, LoadedBackend.of(self.backend), check_model_settings(self.cfg))
        self.jobs = [jobs.job_for(r) for r in self.requests]

    # -- the CLI --

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        from fixtures_queue import storyboard_argv

        done = subprocess.run(
            [*storyboard_argv(), *args, "--json", "--config", str(self.config_path)],
            env={**self.stack.env, **(env or {})}, cwd=self.config_path.parent,
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"storyboard {' '.join(args)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def new_project(self, title: str, n: int) -> int:
        path = self.root / f"{title}.txt"
        path.write_text(story(n), encoding="utf-8")
        return self.cli("new", str(path), "--title", title, "--style", STYLE)["id"]

    # -- the variants --

    def daemon_counters(self) -> tuple[float, int, int]:
        s = self.direct.status()
        return s.render_busy_s, s.pipeline_calls, s.renders

    def run_a(self) -> Pass:
        times, self.images = [], []
        start = time.perf_counter()
        for job in self.jobs:
            t0 = time.perf_counter()
            self.images += self.backend.render([job], _no_steps)
            times.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
        return Pass("a", self.n, wall, median(times), 0.0, busy_s=sum(times), calls=self.n)

    def run_parts(self) -> Pass:
        """Where b's overhead goes: the steps the daemon adds after rendering, one by one in
        this process (PNG encoding, upload + presign with the daemon's uploader), and a
        keep-alive round trip to the daemon's status endpoint, direct and through frp."""
        import io

        from gpu_daemon.uploader import S3Uploader

        uploader = S3Uploader(self.cfg.s3)
        png, upload, ping, ping_frp = [], [], [], []
        for req, image in zip(self.requests, self.images, strict=True):
            with harness.stopwatch() as t_png:
                buf = io.BytesIO()
                image.save(buf, format="PNG")
            with harness.stopwatch() as t_up:
                uploader.upload_png(req.project_id, req.shot_id, req.task_id, buf.getvalue())
            with harness.stopwatch() as t_ping:
                self.direct.status()
            with harness.stopwatch() as t_ping_frp:
                self.tunnel.status()
            png += t_png
            upload += t_up
            ping += t_ping
            ping_frp += t_ping_frp
        return Pass("parts", self.n, 1.0, 0.0, 0.0, extra={
            "png_s": median(png), "upload_s": median(upload), "ping_s": median(ping),
            "ping_frp_s": median(ping_frp), "png_bytes": len(buf.getvalue())})

    def run_b(self, through_tunnel: bool) -> Pass:
        client = self.tunnel if through_tunnel else self.direct
        busy0, calls0, _ = self.daemon_counters()
        walls, overheads = [], []
        start = time.perf_counter()
        for req in self.requests:
            t0 = time.perf_counter()
            answer = client.render(req)
            wall = time.perf_counter() - t0
            walls.append(wall)
            overheads.append(wall - answer.render_ms / 1000)
        total = time.perf_counter() - start
        busy1, calls1, _ = self.daemon_counters()
        return Pass("b'" if through_tunnel else "b", self.n, total, median(walls),
                    median(overheads), busy1 - busy0, calls1 - calls0)

    def run_c(self, k: int, project_id: int, n: int | None = None) -> Pass:
        """`storyboard generate` of the project, drained by the k-worker set."""
        from rq.job import Job

        from storyboard_cli.tasks.jobs import render_job_id

        n = n or self.n
        busy0, calls0, renders0 = self.daemon_counters()
        cli_start = time.time()
        task_id = self.cli("generate", str(project_id), "--no-wait", env=self.queue_env(k))[
            "task_id"]
        cli_s = time.time() - cli_start
        harness.wait_for(lambda: self.store.get_task(task_id)["status"] in ("succeeded",
                                                                             "failed"),
                         300, f"task {task_id}", interval=0.01)
        task = self.store.get_task(task_id)
        if task["status"] != "succeeded":
            raise RuntimeError(f"task {task_id} failed: {task['error']}")
        busy1, calls1, renders1 = self.daemon_counters()
        rendered = renders1 - renders0
        renders = self.store.task_renders(task_id)
        assert len(renders) == n, f"{len(renders)} shots rendered, wanted {n}"
        assert rendered == n, f"the daemon rendered {rendered} images for {n} shots"
        # One render job per window (the plan job claims the windows): the jobs that ran are
        # the claims the shots were rendered under.
        job_ids = sorted({r["claim"] or render_job_id(task, r["shot_id"]) for r in renders})

        jobs: list[Job] = []

        def ended() -> bool:
            # The task succeeds inside the last job; RQ stamps ended_at just after it returns.
            jobs[:] = Job.fetch_many(job_ids, connection=self.redis)
            return all(j.ended_at for j in jobs)

        harness.wait_for(ended, 10, "render jobs' ended_at", interval=0.005)
        plan = Job.fetch(task_id, connection=self.redis)
        enqueued = min(j.enqueued_at.timestamp() for j in jobs)
        ended = max(j.ended_at.timestamp() for j in jobs)
        # Inside a job that rendered a window (the job function: store reads and writes, the
        # daemon call) and, for one worker, between one job's end and the next one's start
        # (RQ's bookkeeping).
        in_job = [(j.ended_at - j.started_at).total_seconds() for j in jobs
                  if (j.return_value() or {}).get("window")]
        by_start = sorted(jobs, key=lambda j: j.started_at)
        between = [(b.started_at - a.ended_at).total_seconds()
                   for a, b in zip(by_start[:-1], by_start[1:], strict=True)]
        phase = ended - enqueued
        busy = busy1 - busy0
        return Pass(
            f"c{k}", n, phase, phase / n, (phase - busy) / n, busy, calls1 - calls0,
            extra={"duty": busy / phase, "end_to_end_s": ended - cli_start, "cli_s": cli_s,
                   # A warm-up of one window has one job: no gap between jobs.
                   "job_s": median(in_job), "between_s": median(between or [0.0]),
                   "plan_s": plan.ended_at.timestamp() - plan.enqueued_at.timestamp()},
        )


def _no_steps(step: int, total: int) -> None:
    pass


# --- the benchmark ------------------------------------------------------------------------------


def measure(backend: str, n: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
        system = System(Path(tmp), backend, n)
        try:
            system.start()
            return _rounds(system, n, rounds)
        finally:
            system.stop()


def _rounds(system: System, n: int, rounds: int) -> dict[str, Any]:
    project = system.new_project("bench", n)
    warmup = system.new_project("warmup", 4)
    # Warm every path once: imports in the workers, connection pools, the model's caches.
    system.run_a()
    system.direct.render(system.requests[0])
    system.tunnel.render(system.requests[0])
    for k in WORKER_SETS:
        system.run_c(k, warmup, n=4)

    variants = {"a": system.run_a, "b": lambda: system.run_b(False),
                "b'": lambda: system.run_b(True),
                **{f"c{k}": (lambda k=k: system.run_c(k, project)) for k in WORKER_SETS}}
    passes: dict[str, list[Pass]] = {v: [] for v in variants}
    parts = []
    for r in range(rounds):
        for name in harness.rotate(list(variants), r):
            passes[name].append(variants[name]())
            if name == "a":  # on the images it just rendered
                parts.append(system.run_parts())
    result = summarize(system.backend_name, n, rounds, passes)
    result["parts"] = {k: median([p.extra[k] for p in parts]) for k in parts[0].extra}
    return result


def summarize(backend: str, n: int, rounds: int, passes: dict[str, list[Pass]]
              ) -> dict[str, Any]:
    rows = {}
    for name, ps in passes.items():
        ratios = [p.images_per_s / a.images_per_s for p, a in zip(ps, passes["a"], strict=True)]
        rows[name] = {
            "images_per_s": median([p.images_per_s for p in ps]),
            "per_shot_ms": median([p.per_shot_s for p in ps]) * 1000,
            "overhead_ms": median([p.overhead_s for p in ps]) * 1000,
            "render_ms": median([p.busy_s / p.n for p in ps]) * 1000,
            "images_per_call": median([p.n / p.calls for p in ps if p.calls]),
            "ratio_to_a": median(ratios),
            **{k: median([p.extra[k] for p in ps]) for k in (ps[0].extra if ps else {})},
        }
    return {"backend": backend, "shots": n, "rounds": rounds, "variants": rows}


LABELS = {
    "a": "a: backend in-process",
    "b": "b: daemon HTTP, direct",
    "b'": "b': daemon HTTP, through frp (stcp)",
    "c1": "c: CLI → Redis → 1 worker → frp → daemon → S3 → store",
    "c2": "c: the same with 2 workers",
}


EXPLAIN = (
    "Overhead per shot is the time a shot costs beyond rendering it: for b and b' the median "
    "of (request wall time − the daemon's render time for that request); for c (render jobs "
    "render windows of up to max_batch shots, which complete together) the render phase "
    "(first render job queued → last one done) − the daemon's render time during it, over the "
    "shots. c's images/s counts the render phase; the duty cycle is the daemon's render_busy_s "
    "delta over that phase; images/call is the daemon's renders over its pipeline calls "
    "(/v1/status). “× a” is each variant's images/s over a's, within the same round.\n"
)


def markdown(results: list[dict[str, Any]]) -> tuple[str, list[bool]]:
    out, met = [EXPLAIN], []
    for res in results:
        v = res["variants"]
        out.append(f"**{res['backend']}** backend, {res['shots']} shots, median of "
                   f"{res['rounds']} interleaved rounds:\n")
        rows = []
        for name, label in LABELS.items():
            r = v[name]
            rows.append([
                label, f"{r['images_per_s']:.1f}", f"{r['ratio_to_a']:.2f}",
                f"{r['per_shot_ms']:.1f}", f"{r['render_ms']:.1f}",
                "-" if name == "a" else f"{r['overhead_ms']:.1f}",
                f"{r['images_per_call']:.2f}" if name != "a" else "1",
                f"{r['duty']:.3f}" if "duty" in r else "-",
            ])
        out.append(harness.table(
            ["path", "images/s", "× a", "per shot ms (median)", "render ms/shot",
             "overhead ms/shot (median)", "images/call", "duty cycle"], rows))
        b_tunnel, c1, c2 = v["b'"], v["c1"], v["c2"]
        out.append(
            f"\nFull path (c), end to end incl. the CLI process and planning: "
            f"1 worker {c1['end_to_end_s']:.2f} s, 2 workers {c2['end_to_end_s']:.2f} s "
            f"(`storyboard generate --no-wait` {ms(c1['cli_s'])} ms; plan job "
            f"{ms(c1['plan_s'])} ms). With 1 worker, a render job runs {ms(c1['job_s'])} ms "
            f"(b' took {b_tunnel['per_shot_ms']:.1f} ms per request) and the worker's RQ "
            f"bookkeeping between jobs takes {ms(c1['between_s'])} ms (median).\n")
        p = res["parts"]
        rest = v["b"]["overhead_ms"] - 1000 * (p["png_s"] + p["upload_s"] + p["ping_s"])
        out.append(
            "Where b's overhead per shot goes (medians, measured step by step in the benchmark "
            "process):\n\n" + harness.table(
                ["PNG encode", "upload + presign (SeaweedFS)", "keep-alive round trip",
                 "the same through frp", "rest (queue hand-offs, NDJSON stream, validation)"],
                [[f"{ms(p['png_s'])} ms ({p['png_bytes'] / 1024:.0f} KiB)",
                  f"{ms(p['upload_s'])} ms", f"{ms(p['ping_s'])} ms",
                  f"{ms(p['ping_frp_s'])} ms", f"{rest:.1f} ms"]]) + "\n")
        for name in ("b", "c1", "c2"):
            line, ok = harness.verdict(f"{res['backend']} {name} overhead per shot (ms)",
                                       v[name]["overhead_ms"], TARGET_OVERHEAD_MS, False, "{:.1f}")
            out.append(f"- {line}")
            met.append(ok)
        if res["backend"] == "sketch":
            out.append("- duty cycle: no target for the sketch backend (it has no GPU: a panel "
                       "takes less time than its own PNG encoding and upload)\n")
            continue
        for name in ("c1", "c2"):
            line, ok = harness.verdict(f"{res['backend']} {name} duty cycle", v[name]["duty"],
                                       TARGET_DUTY, True, "{:.3f}")
            out.append(f"- {line}")
            met.append(ok)
        max_batch = BACKENDS[res["backend"]]["max_batch"]
        line, ok = harness.verdict(
            f"{res['backend']} c2 images per pipeline call ({res['shots']}-shot task, "
            f"max_batch {max_batch})", v["c2"]["images_per_call"],
            TARGET_CALL_SHARE * max_batch, True)
        out.append(f"- {line}")
        met.append(ok)
        out.append("- with one worker the daemon idles while each answer travels back and the "
                   "worker records it and takes the next job (the c1 overhead per shot); "
                   "`storyboard up` starts two workers per daemon (`[stack] workers`)\n")
    return "\n".join(out), met


def run(shots: int = 40, rounds: int = 3, backends: tuple[str, ...] = tuple(BACKENDS)
        ) -> list[dict[str, Any]]:
    return [measure(b, shots, rounds) for b in backends]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=list(BACKENDS))
    args = parser.parse_args()
    results = run(args.shots, args.rounds, tuple(args.backend or BACKENDS))
    print(markdown(results)[0])


if __name__ == "__main__":
    main()
