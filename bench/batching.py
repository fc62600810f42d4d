"""Batching and the daemon's cost per image (issue 6, item 3), on the tiny diffusers pipeline.

Variants, each rendering M images of the same size and steps per round, rounds interleaved:

  raw b1       ``pipe()`` in this process, one image per call (the baseline)
  raw b4       ``pipe()`` with 4 prompts per call: what batching can give on this hardware
  daemon seq   a real `gpu-daemon serve`, one /v1/render at a time through the worker's
               client (HTTP, the render process, PNG, upload to SeaweedFS, presign)
  daemon b1x2  two clients at once whose requests differ in negative prompt, so the daemon
               never batches them: batch 1 with the daemon kept busy (the upload of one image
               overlaps the render of the next)
  daemon batch 8 clients at once, identical settings: the daemon batches them (max_batch 4)

The daemon's images per pipeline call and busy fraction come from its /v1/status counters.
On this CPU the figures guard against regressions only; on a GPU the render is the part that
batching speeds up.

Run alone: .venv/bin/python bench/batching.py [--images 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import harness
from harness import median, start_daemon

SIZE, STEPS, GUIDANCE, MAX_BATCH = 64, 4, 7.0, 4
PROMPT, STYLE = "a lighthouse on a cliff in a storm", "watercolor"
CONCURRENT = 8
TARGET_B1 = 0.95


def load_raw_pipe(model: Path) -> Callable[[int, int], None]:
    """The same pipeline in this process, called directly with the prompts the daemon uses;
    returns call(seed, batch)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from gpu_daemon.styles import compose

    diffusers_logging.disable_progress_bar()

    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    fast = pipe.tokenizer.backend_tokenizer
    positive, negative = compose(
        PROMPT, STYLE, lambda t: len(fast.encode(t, add_special_tokens=False).ids))

    def call(seed: int, batch: int) -> None:
        with torch.inference_mode():
            pipe([positive] * batch, negative_prompt=[negative] * batch, width=SIZE,
                 height=SIZE, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                 generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)])

    call(0, 1)
    call(0, MAX_BATCH)
    return call


def request(seed: int, negative: str = "") -> Any:
    from storyboard_contract.wire import RenderRequest

    return RenderRequest(project_id=1, shot_id=seed, task_id=str(uuid.uuid4()), seed=seed,
                         prompt=PROMPT, style=STYLE, negative_prompt=negative)


class Bench:
    def __init__(self, raw: Callable[[int, int], None] | None, daemon: Any, images: int
                 ) -> None:
        from storyboard_cli.tasks.daemon_client import DaemonClient
        from storyboard_contract.config import DaemonConfig

        self.raw, self.daemon, self.m = raw, daemon, images
        cfg = DaemonConfig(url=daemon.url, token=daemon.token, read_timeout=120)
        self.clients = [DaemonClient(cfg) for _ in range(CONCURRENT)]

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def counters(self) -> tuple[float, int, int]:
        s = self.clients[0].status()
        return s.render_busy_s, s.pipeline_calls, s.renders

    def raw_loop(self, batch: int) -> dict[str, float]:
        assert self.raw is not None
        start = time.perf_counter()
        for i in range(0, self.m, batch):
            self.raw(i, batch)
        return {"wall": time.perf_counter() - start, "calls": self.m // batch}

    def daemon_run(self, clients: int, distinct: bool) -> dict[str, float]:
        """m requests from `clients` threads, each sending its share one after another."""
        per = self.m // clients

        def send(k: int) -> None:
            negative = f"blurry, lowres, variant {k}" if distinct else ""
            for i in range(per):
                self.clients[k].render(request(1000 * k + i, negative))

        busy0, calls0, renders0 = self.counters()
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(send, range(clients)))
        wall = time.perf_counter() - start
        busy1, calls1, renders1 = self.counters()
        assert renders1 - renders0 == per * clients
        return {"wall": wall, "calls": calls1 - calls0, "busy": busy1 - busy0}


@contextmanager
def serving(tmp: Path, model: Path, images: dict[str, Any], raw: Callable[[int, int], None] | None,
            m: int, timeout: float = 60.0) -> Iterator[Bench]:
    """SeaweedFS, a `gpu-daemon serve` of the model with these [images] settings, and the
    clients; all stopped afterwards."""
    s3 = harness.start_s3(tmp / "s3")
    daemon = bench = None
    try:
        daemon = start_daemon(tmp / "daemon", s3, "diffusers", model, images=images,
                              timeout=timeout)
        bench = Bench(raw, daemon, m)
        yield bench
    finally:
        if bench:
            bench.close()
        if daemon:
            daemon.stop()
        s3.proc.stop()


VARIANTS: dict[str, tuple[str, Callable[[Bench], dict[str, float]]]] = {
    "raw_b1": ("raw `pipe()` loop, batch 1", lambda b: b.raw_loop(1)),
    "raw_b4": (f"raw `pipe()` loop, batch {MAX_BATCH}", lambda b: b.raw_loop(MAX_BATCH)),
    "daemon_seq": ("daemon, batch 1, one request at a time", lambda b: b.daemon_run(1, False)),
    "daemon_b1x2": ("daemon, batch 1, 2 requests in flight (never batched)",
                    lambda b: b.daemon_run(2, True)),
    "daemon_batch": (f"daemon, {CONCURRENT} concurrent requests, batched (max_batch "
                     f"{MAX_BATCH})", lambda b: b.daemon_run(CONCURRENT, False)),
}


def run(images: int = 16, rounds: int = 3) -> dict[str, Any]:
    from gpu_daemon.testing import build_tiny_pipeline

    images -= images % CONCURRENT
    with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp_dir:
        tmp = Path(tmp_dir)
        model = build_tiny_pipeline(tmp / "tiny-sd")
        settings = {"width": SIZE, "height": SIZE, "steps": STEPS, "guidance_scale": GUIDANCE,
                    "max_batch": MAX_BATCH}
        with serving(tmp, model, settings, load_raw_pipe(model), images) as bench:
            for _, fn in VARIANTS.values():  # warm every path once
                fn(bench)
            samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
            for r in range(rounds):
                for name in harness.rotate(list(VARIANTS), r):
                    samples[name].append(VARIANTS[name][1](bench))
    rows = {}
    for name, runs in samples.items():
        rows[name] = {
            "images_per_s": median([images / s["wall"] for s in runs]),
            "ratio": median([r["wall"] / s["wall"]
                             for s, r in zip(runs, samples["raw_b1"], strict=True)]),
            "images_per_call": median([images / s["calls"] for s in runs]),
            "duty": median([s["busy"] / s["wall"] for s in runs]) if "busy" in runs[0] else None,
            # The pipeline calls' own time per image: the raw loop's whole wall time, the
            # daemon's render_busy_s (so the rest of its wall time is HTTP, PNG, upload).
            "render_ms": median([s.get("busy", s["wall"]) / images for s in runs]) * 1000,
        }
    return {"images": images, "rounds": rounds, "variants": rows}


def markdown(res: dict[str, Any]) -> tuple[str, list[bool]]:
    v = res["variants"]
    rows = [[label, f"{v[name]['images_per_s']:.1f}", f"{v[name]['ratio']:.2f}",
             f"{v[name]['images_per_call']:.2f}", f"{v[name]['render_ms']:.1f}",
             "-" if v[name]["duty"] is None else f"{v[name]['duty']:.2f}"]
            for name, (label, _) in VARIANTS.items()]
    out = [f"Tiny random-weight SD pipeline, {SIZE}×{SIZE}, {STEPS} steps, CPU; {res['images']} "
           f"images per variant, median of {res['rounds']} interleaved rounds:\n",
           harness.table(["variant", "images/s", "× raw batch 1", "images per pipeline call",
                          "render ms per image", "daemon busy fraction"], rows), ""]
    met = []
    line, ok = harness.verdict("daemon batch-1 throughput (2 in flight) / raw loop",
                               v["daemon_b1x2"]["ratio"], TARGET_B1, True)
    out.append(f"- {line}")
    met.append(ok)
    out.append(f"- for reference, one request at a time / raw loop: "
               f"{v['daemon_seq']['ratio']:.2f} (no target: latency-bound, the pipeline idles "
               "while each answer travels back and the next request comes in)")
    return "\n".join(out) + "\n", met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(markdown(run(args.images, args.rounds))[0])


if __name__ == "__main__":
    main()
