"""GPU daemon on the tiny random-weight pipeline (64x64, 4 steps), on this machine's CPU.

- per image: a raw ``pipe()`` call in this process vs a /v1/render through a real
  `gpu-daemon serve` (HTTP, render queue, PNG encoding, upload to SeaweedFS, presigning);
- batching: 4 concurrent identical-settings requests vs the same 4 sent one after another
  (wall time and pipeline calls, from /v1/status);
- keep-alive latency of a small authenticated request (TCP_NODELAY check).

Run: .venv/bin/python bench/daemon_render.py [--rounds N]
It starts SeaweedFS and the daemon the way the tests do, and stops both at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import start_s3  # noqa: E402 - sets HF_HUB_OFFLINE before any HF import
from fixtures_daemon import start_daemon  # noqa: E402

from gpu_daemon.styles import compose  # noqa: E402
from gpu_daemon.testing import build_tiny_pipeline  # noqa: E402

SIZE, STEPS, GUIDANCE = 64, 4, 7.0
PROMPT, STYLE = "a lighthouse on a cliff in a storm", "watercolor"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def load_raw_pipe(model: Path):
    """The same pipeline in this process, called directly, with the prompts the daemon uses."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32,
                                                   local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    fast = pipe.tokenizer.backend_tokenizer
    positive, negative = compose(
        PROMPT, STYLE, lambda t: len(fast.encode(t, add_special_tokens=False).ids)
    )

    def call(seed: int) -> float:
        start = time.perf_counter()
        pipe(positive, negative_prompt=negative, width=SIZE, height=SIZE,
             num_inference_steps=STEPS, guidance_scale=GUIDANCE,
             generator=torch.Generator("cpu").manual_seed(seed))
        return time.perf_counter() - start

    call(0)
    return call


def body(seed: int) -> dict:
    return {"project_id": 1, "shot_id": seed, "task_id": str(uuid.uuid4()), "seed": seed,
            "prompt": PROMPT, "style": STYLE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        model = build_tiny_pipeline(tmp / "tiny-sd")
        s3 = start_s3(tmp / "s3")
        daemon = None
        try:
            daemon = start_daemon(tmp / "daemon", s3, "diffusers", model,
                                  images={"width": SIZE, "height": SIZE, "steps": STEPS,
                                          "guidance_scale": GUIDANCE, "max_batch": 4})
            report(model, daemon, rounds)
        finally:
            if daemon:
                daemon.stop()
            s3.proc.stop()


def report(model: Path, daemon, rounds: int) -> None:
    raw_call = load_raw_pipe(model)
    with daemon.client() as c:
        c.post("/v1/render", json=body(0)).raise_for_status()
        walls, renders, raws = [], [], []
        # Interleaved, so machine noise hits both alike.
        for i in range(rounds):
            raws.append(raw_call(i))
            start = time.perf_counter()
            answer = c.post("/v1/render", json=body(i)).json()
            walls.append(time.perf_counter() - start)
            renders.append(answer["render_ms"] / 1000)
        pings = []
        for _ in range(50):
            start = time.perf_counter()
            c.get("/v1/status").raise_for_status()
            pings.append(time.perf_counter() - start)

    print(f"tiny pipeline {SIZE}x{SIZE}, {STEPS} steps, CPU, median of {rounds}:")
    print(f"  raw pipe() call                 {ms(statistics.median(raws))}")
    print(f"  daemon pipeline call            {ms(statistics.median(renders))}")
    print(f"  daemon request end to end       {ms(statistics.median(walls))}"
          "  (HTTP + queue + render + PNG + upload + presign)")
    print(f"  keep-alive GET /v1/status       {ms(statistics.median(pings))}")

    clients = [daemon.client() for _ in range(4)]
    try:
        def one(i: int, seed: int) -> dict:
            return clients[i].post("/v1/render", json=body(seed)).json()

        seq, conc, calls_seq, calls_conc = [], [], [], []
        with ThreadPoolExecutor(4) as pool:
            for r in range(max(3, rounds // 4)):
                before = daemon.status()["pipeline_calls"]
                start = time.perf_counter()
                for i in range(4):
                    one(i, 100 + r * 4 + i)
                seq.append(time.perf_counter() - start)
                middle = daemon.status()["pipeline_calls"]
                start = time.perf_counter()
                list(pool.map(one, range(4), [200 + r * 4 + i for i in range(4)]))
                conc.append(time.perf_counter() - start)
                calls_seq.append(middle - before)
                calls_conc.append(daemon.status()["pipeline_calls"] - middle)
    finally:
        for c in clients:
            c.close()
    print("4 requests, identical settings, median over rounds:")
    print(f"  one after another  {ms(statistics.median(seq))}, "
          f"{statistics.median(calls_seq):.0f} pipeline calls")
    print(f"  concurrent         {ms(statistics.median(conc))}, "
          f"{statistics.median(calls_conc):.0f} pipeline calls")
    print(f"  wall-time ratio concurrent/sequential: "
          f"{statistics.median(conc) / statistics.median(seq):.2f}")
    status = daemon.status()
    print(f"daemon duty cycle over the run: {status['render_busy_s'] / status['uptime_s']:.0%} "
          f"({status['renders']} images in {status['pipeline_calls']} pipeline calls)")


if __name__ == "__main__":
    main()
