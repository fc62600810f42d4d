"""Scale (issue 6, item 5): a project of 10,000 shots.

- the store saving a 10,000-shot plan (one transaction, as the plan job does);
- enqueueing its 10,000 render jobs through the real fan-out code (jobs.enqueue_renders, as
  the plan job calls it) into a real redis-server, and Redis's memory per queued job
  (INFO memory, used_memory before and after);
- with every shot rendered (image key, presigned link), `storyboard show PROJECT --json` as a
  user runs it (a CLI process), and how that splits into the store query and JSON output;
- the store's size on disk.

Run alone: .venv/bin/python bench/scale.py [--shots 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import harness
from harness import median

TARGET_SHOW_S = 0.4  # issue 24 (was 0.5, issue 6)


def planned_rows(task_id: str, n: int) -> list[dict[str, Any]]:
    """What the plan job stores for n shots, with descriptions and prompts of typical length."""
    from storyboard_cli.tasks.jobs import planned_row
    from storyboard_contract.wire import PlannedShot

    text = ("In the {}th hour the keeper climbs the spiral stairs, lantern in hand, while the "
            "storm throws spray against the glass and the bell rings far away.")
    return [planned_row(task_id, PlannedShot(
        index=i, description=text.format(i), camera="medium",
        prompt="medium shot, " + text.format(i), duration=4.0)) for i in range(n)]


def mark_rendered(store: Any, task_id: str) -> None:
    """Every shot done, with an object key and a presigned link of the real shape (setup for
    `show`, not measured: one bulk statement instead of 10,000 render jobs)."""
    from storyboard_contract.s3 import make_client, presign_get

    client = make_client("http://127.0.0.1:8333", "sbexample", "secret", "us-east-1", "path")
    url, expires = presign_get(client, "storyboard", f"projects/1/shots/1/{task_id}.png", 86400)
    with store._write() as c:
        c.execute(
            """update shots set image_key = 'projects/' || project_id || '/shots/' || id || '/'
                 || task_id || '.png', image_url = replace(?, '/shots/1/', '/shots/' || id || '/'),
                 url_expires_at = ? where task_id = ?""", [url, expires, task_id])
        c.execute("update renders set status = 'done', image_key = 'x' where task_id = ?",
                  [task_id])
        c.execute("update tasks set status = 'succeeded', finished_at = ? where id = ?",
                  [expires, task_id])


def run(shots: int = 10_000, repeat: int = 5) -> dict[str, Any]:
    import rq.job  # noqa: F401 - imported before timing: the enqueue, not the import
    from fixtures_queue import storyboard_argv

    from storyboard_cli import output, views
    from storyboard_cli.store import Store
    from storyboard_cli.tasks.jobs import connect_redis, enqueue_renders
    from storyboard_contract.config import Config

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_dir:
        tmp = Path(tmp_dir)
        redis_server = harness.RedisServer(tmp / "redis").start()
        try:
            cfg = Config()
            cfg.redis.url = redis_server.url
            config_path = tmp / "storyboard.toml"
            config_path.write_text(f'[store]\npath = "storyboard.db"\n\n'
                                   f'[redis]\nurl = "{redis_server.url}"\n')
            store = Store(tmp / "storyboard.db")
            project = store.create_project("scale", "A long story. " * 100, "movie")
            task = store.create_task("storyboard", project["id"])
            rows = planned_rows(task["id"], shots)
            with harness.stopwatch() as t_plan:
                store.save_plan(task["id"], project["id"], rows, with_renders=True)
            shot_ids = [r["shot_id"] for r in store.task_renders(task["id"])]

            redis = connect_redis(redis_server.url)
            before = int(redis.info("memory")["used_memory"])
            with harness.stopwatch() as t_enqueue:
                queued = enqueue_renders(redis, cfg.queue, task, shot_ids)
            after = int(redis.info("memory")["used_memory"])
            assert len(queued) == shots
            keys = redis.dbsize()

            mark_rendered(store, task["id"])
            # A one-shot project in the same store: `show` of it is the CLI's fixed cost.
            small = store.create_project("small", "One shot.", "movie")
            small_task = store.create_task("storyboard", small["id"])
            store.save_plan(small_task["id"], small["id"], planned_rows(small_task["id"], 1),
                            with_renders=True)
            mark_rendered(store, small_task["id"])
            t_view, t_dump = [], []
            for _ in range(repeat):
                with harness.stopwatch() as t:
                    view = views.project_view(store, project["id"])
                t_view += t
                with harness.stopwatch() as t, redirect_stdout(io.StringIO()):
                    output.print_json(view)
                t_dump += t
            assert len(view["shots"]) == shots
            store.db.conn.execute("pragma wal_checkpoint(truncate)")
            store.close()
            db_bytes = sum(p.stat().st_size for p in tmp.glob("storyboard.db*"))

            def show(project_id: int) -> list[str]:
                return [*storyboard_argv(), "show", str(project_id), "--json",
                        "--config", str(config_path)]

            commands = {"show": show(project["id"]), "show_small": show(small["id"]),
                        "python": [sys.executable, "-c", "pass"]}
            env = {**os.environ, "NO_COLOR": "1"}
            samples: dict[str, list[float]] = {name: [] for name in commands}
            outs: dict[str, bytes] = {}
            for i in range(repeat + 1):  # the first round warms the page cache
                for name, argv in commands.items():
                    start = time.perf_counter()
                    outs[name] = subprocess.run(argv, env=env, capture_output=True,
                                                check=True).stdout
                    if i:
                        samples[name].append(time.perf_counter() - start)
            out = outs["show"]
            assert len(json.loads(out)["shots"]) == shots
        finally:
            redis_server.stop()
    return {
        "shots": shots, "repeat": repeat,
        "save_plan_s": t_plan[0],
        "enqueue_s": t_enqueue[0],
        "redis_bytes_per_job": (after - before) / shots,
        "redis_keys": keys,
        "show_s": median(samples["show"]),
        "show_small_s": median(samples["show_small"]),
        "python_s": median(samples["python"]),
        "show_bytes": len(out),
        "view_s": median(t_view),
        "json_s": median(t_dump),
        "db_bytes": db_bytes,
    }


def markdown(r: dict[str, Any]) -> tuple[str, list[bool]]:
    n = r["shots"]
    rows = [
        ["store: save the plan (one transaction, shots + render rows)",
         f"{r['save_plan_s']:.2f} s", f"{r['save_plan_s'] / n * 1e6:.0f} µs/shot"],
        ["enqueue the render jobs (jobs.enqueue_renders, one pipeline)",
         f"{r['enqueue_s']:.2f} s", f"{r['enqueue_s'] / n * 1e6:.0f} µs/job"],
        ["Redis memory per queued job (INFO used_memory delta)",
         f"{r['redis_bytes_per_job'] * n / 2**20:.1f} MiB in all",
         f"{r['redis_bytes_per_job']:.0f} bytes/job ({r['redis_keys']} keys)"],
        ["`storyboard show --json` (CLI process, median of "
         f"{r['repeat']})", f"{r['show_s']:.3f} s",
         f"{r['show_bytes'] / 2**20:.1f} MiB of JSON; `python -c pass` {r['python_s']:.3f} s"],
        ["… `show --json` of a 1-shot project (start-up, imports, config)",
         f"{r['show_small_s']:.3f} s", ""],
        [f"… views.project_view() of the {n:,} shots, in-process", f"{r['view_s']:.3f} s", ""],
        ["… output.print_json() of it, in-process", f"{r['json_s']:.3f} s", ""],
        ["store size on disk (WAL checkpointed)", f"{r['db_bytes'] / 2**20:.1f} MiB",
         f"{r['db_bytes'] / n:.0f} bytes/shot"],
    ]
    line, ok = harness.verdict(f"`show --json` of {n:,} shots (s)", r["show_s"], TARGET_SHOW_S,
                               False, "{:.3f}")
    text = (f"A project of {n:,} shots, all rendered:\n\n"
            + harness.table(["what", "time / size", "per unit"], rows) + f"\n\n- {line}\n")
    return text, [ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(markdown(run(args.shots, args.repeat))[0])


if __name__ == "__main__":
    main()
