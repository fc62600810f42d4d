"""The device check (issue 12, item 5): the SD 1.5-size model on a CUDA GPU, raw and served.

On a CUDA machine (run through bench/gpu.sh), within a time budget (8 minutes by default),
at the default frame size (the default aspect, 16:9, at the [images] pixel area: 680x384)
and 20 steps, with a random-weight pipeline of SD 1.5's architecture built on the spot
(gpu_daemon.testing.build_sd15_pipeline; nothing is downloaded):

  raw b1/b4/b8   ``pipe()`` in this process, 1, 4 or 8 prompts per call, float16 and bfloat16
  compiled       the same with torch.compile of the UNet (compile time reported apart)
  daemon b1      a real `gpu-daemon serve`, two clients whose requests are never batched
  full path      `storyboard generate` of a 24-shot task: Redis, the stack's workers, frp
                 (stcp), the daemon, SeaweedFS; as many workers as the default deployment
                 and as the other worker set of bench/overhead.py

For each: images/s, the ratio to the raw batch-1 loop (float16), pipeline calls per image
(the daemon's /v1/status counters), the GPU memory peak (torch's allocator in this process,
nvidia-smi for the daemon's processes) and the daemon's duty cycle (render_busy_s over the
wall time). Variants that the remaining budget cannot fit are listed as skipped.

Models (issue 19), through the daemon's own loaders (gpu_daemon/models, images/pool.py), on
the same build written as a single-file checkpoint in the original layout:

  single file    load of the .safetensors checkpoint (from_single_file with the folder as
                 its configuration), hashing for provenance, and the warm-up call
  LoRA switch    a window of max_batch shots with LoRA A, then one with LoRA B, alternating,
                 against windows without a switch: the extra time a switch costs a window
  model swap     with images.max_loaded = 1, a window for the other model: unload one,
                 load the other (the progress state "loading model ...")
  schedulers     images/s at max_batch for every sampler name (the same steps each)

Consistency modes (issue 20), through the daemon's backend: images/s of a window of
max_batch shots in text, reference (one and two characters: IP-Adapter, masks), attention
(the first window, which makes a character's bank, and a later one, which reads it) and lora
mode, their ratio to text and GPU memory peak; the IP-Adapter (an image encoder of ViT-H/14's
size on CUDA) built at random like the model, its resident memory apart.

Without CUDA (or with --cpu-small) the same script runs on the CPU at a small size with the
tiny pipeline, to show that it works: those figures are no GPU's.

Run: bench/gpu.sh [--cpu-small] [--budget-s 480] [--out bench/results-gpu.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import batching
import harness
import overhead

from storyboard_contract.config import ImagesConfig

FULL_PATH_SHOTS = 24
CONSISTENCY_CALLS = 5  # timed calls per consistency mode
PROMPT, STYLE = batching.PROMPT, batching.STYLE


@dataclass(frozen=True)
class Mode:
    label: str
    device: str
    area: tuple[int, int]  # [images] width x height: the pixel budget
    steps: int
    images: int  # per raw / daemon variant
    dtypes: tuple[str, ...]
    compile: bool
    raw_batches: tuple[int, ...] = (1, 4, 8)
    max_batch: int = ImagesConfig().max_batch

    @property
    def frame(self) -> tuple[int, int]:
        width, height = self.area
        images = ImagesConfig(width=width, height=height)
        return images.frame_size(images.aspect)


GPU = Mode("CUDA, SD 1.5 architecture (random weights)", "cuda", (512, 512), 20, 16,
           ("float16", "bfloat16"), compile=True)
CPU_SMALL = Mode("CPU at a small size, tiny random-weight pipeline: shows the script works; "
                 "not GPU figures", "cpu", (64, 64), 4, 16, ("float32", "bfloat16"),
                 compile=False)


@dataclass
class Row:
    variant: str
    dtype: str
    compiled: bool
    batch: str
    images_per_s: float
    calls_per_image: float
    memory_gib: float | None = None
    duty: float | None = None
    note: str = ""


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)


class GpuMemory:
    """The peak GPU memory of other processes (the daemons), sampled with nvidia-smi."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak_mib, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            out = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory",
                 "--format=csv,noheader,nounits"], capture_output=True, text=True).stdout
            used = sum(int(mib) for pid, mib in (line.split(",") for line in out.splitlines()
                                                 if line.strip()) if int(pid) != os.getpid())
            self.peak_mib = max(self.peak_mib, used)

    @property
    def gib(self) -> float:
        return self.peak_mib / 1024


@contextmanager
def daemon_memory(mode: Mode) -> Iterator[GpuMemory | None]:
    if mode.device != "cuda" or shutil.which("nvidia-smi") is None:
        yield None
        return
    with GpuMemory() as memory:
        yield memory


# --- the raw loop ------------------------------------------------------------------------------


def raw_pipe(model: Path, mode: Mode, dtype: str, compiled: bool) -> Callable[[int, int], None]:
    """The pipeline in this process, with the daemon's settings; returns call(seed, batch)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from gpu_daemon.images import tuning

    diffusers_logging.disable_progress_bar()
    from gpu_daemon.styles import compose

    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=getattr(torch, dtype),
                                                   local_files_only=True).to(mode.device)
    pipe.set_progress_bar_config(disable=True)
    settings = tuning.plan(ImagesConfig(dtype=dtype, compile=compiled),
                           "cuda:0" if mode.device == "cuda" else "cpu")
    tuning.apply(pipe, settings)
    fast = pipe.tokenizer.backend_tokenizer
    positive, negative = compose(
        PROMPT, STYLE, lambda t: len(fast.encode(t, add_special_tokens=False).ids))
    width, height = mode.frame

    def call(seed: int, batch: int) -> None:
        with torch.inference_mode():
            pipe([positive] * batch, negative_prompt=[negative] * batch, width=width,
                 height=height, num_inference_steps=mode.steps, guidance_scale=7.0,
                 generator=[torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)])

    return call


def raw_rows(model: Path, mode: Mode, dtype: str, compiled: bool, budget: Budget,
             reserve: float) -> list[Row]:
    import torch

    cuda = mode.device == "cuda"
    call = raw_pipe(model, mode, dtype, compiled)
    rows = []
    for batch in mode.raw_batches:
        if budget.left() < reserve:
            rows.append(Row("raw `pipe()` loop", dtype, compiled, str(batch), float("nan"),
                            1 / batch, note="skipped: time budget"))
            continue
        started = time.perf_counter()
        call(0, batch)  # warm-up; with compile, the compilation for this shape
        warm_s = time.perf_counter() - started
        call(0, batch)  # the first calls of a shape still set up kernels and buffers
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        n = max(batch, mode.images - mode.images % batch)
        started = time.perf_counter()
        for seed in range(0, n, batch):
            call(seed, batch)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
        memory = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        rows.append(Row("raw `pipe()` loop", dtype, compiled, str(batch), n / wall, 1 / batch,
                        memory, note=f"compile + first call {warm_s:.0f} s" if compiled else ""))
    del call
    if cuda:
        torch.cuda.empty_cache()
    return rows


# --- the daemon --------------------------------------------------------------------------------


def images_settings(mode: Mode, model: Path, dtype: str, **extra: Any) -> dict[str, Any]:
    width, height = mode.area
    return {"backend": "diffusers", "model": str(model), "width": width, "height": height,
            "steps": mode.steps, "max_batch": mode.max_batch, "dtype": dtype, **extra}


def daemon_b1_row(tmp: Path, model: Path, mode: Mode, dtype: str) -> Row:
    """Two clients, requests never batched (distinct negative prompts), through HTTP, PNG
    and SeaweedFS: bench/batching.py's daemon_b1x2 at the default frame size."""
    width, height = mode.frame
    # The requests carry no size: the daemon's own [images] size is the frame.
    settings = {**images_settings(mode, model, dtype), "width": width, "height": height}
    with batching.serving(tmp, model, settings, None, mode.images, timeout=300) as bench:
        bench.daemon_run(2, True)  # warm: connections, the first call
        with daemon_memory(mode) as memory:
            run = bench.daemon_run(2, True)
    return Row("daemon, 2 requests in flight, never batched", dtype, False, "1",
               mode.images / run["wall"], run["calls"] / mode.images,
               memory.gib if memory else None, run["busy"] / run["wall"])


def full_path_rows(tmp: Path, model: Path, mode: Mode, dtype: str) -> list[Row]:
    """`storyboard generate` of a 24-shot task through the whole stack, per worker set."""
    name = "device-check"
    overhead.BACKENDS[name] = images_settings(mode, model, dtype)
    system = overhead.System(tmp / "stack", name, FULL_PATH_SHOTS)
    rows = []
    try:
        system.start()
        project = system.new_project("device-check", FULL_PATH_SHOTS)
        warmup = system.new_project("warmup", 4)
        for k in overhead.WORKER_SETS:
            system.run_c(k, warmup, n=4)
            with daemon_memory(mode) as memory:
                p = system.run_c(k, project)
            rows.append(Row(f"full path, {FULL_PATH_SHOTS}-shot task, {k} worker(s)", dtype,
                            False, f"≤ {mode.max_batch}", p.images_per_s, p.calls / p.n,
                            memory.gib if memory else None, p.extra["duty"]))
    finally:
        system.stop()
    return rows


# --- models: single file, LoRA switches, swaps, schedulers ---------------------------------


@dataclass
class ModelRow:
    measure: str
    value: str
    note: str = ""


def _window(mode: Mode, size: int, **job: Any) -> list[Any]:
    from gpu_daemon.images import RenderJob

    width, height = mode.frame
    return [RenderJob(PROMPT, "", seed, width, height, mode.steps, 7.0, **job)
            for seed in range(size)]


def _timed(call: Callable[[], Any], device: str) -> float:
    import torch

    started = time.perf_counter()
    call()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def model_rows(tmp: Path, model: Path, mode: Mode, dtype: str, budget: Budget,
               reserve: float) -> list[ModelRow]:
    """Load a single file, switch LoRAs between windows, swap models, sample with every
    scheduler: each part as long as the budget allows (what it cannot fit is skipped)."""
    from gpu_daemon.images.diffusion import DiffusersBackend
    from gpu_daemon.images.pool import ModelPool
    from gpu_daemon.models.catalog import Catalog
    from gpu_daemon.testing import write_lora, write_single_file
    from storyboard_contract.config import SCHEDULER_NAMES, Config, ModelConfig

    rows: list[ModelRow] = []
    tmp.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    checkpoint = write_single_file(model, tmp / "model.safetensors")
    size_gib = checkpoint.stat().st_size / 2**30
    rows.append(ModelRow("single-file checkpoint written", f"{time.perf_counter() - started:.1f} s",
                         f"{size_gib:.2f} GiB, original layout"))
    images = ImagesConfig(model=str(checkpoint), model_config=str(model), dtype=dtype,
                          device=mode.device, max_batch=mode.max_batch)
    load_s = _timed(lambda: DiffusersBackend.load(images, tmp), mode.device)
    rows.append(ModelRow("single-file load, hash and warm-up", f"{load_s:.1f} s",
                         "DiffusersBackend.load of the .safetensors file"))
    folder = ImagesConfig(model=str(model), dtype=dtype, device=mode.device)
    rows.append(ModelRow("diffusers-folder load, hash and warm-up",
                         f"{_timed(lambda: DiffusersBackend.load(folder, tmp), mode.device):.1f} s",
                         "the same weights as a folder, for comparison"))
    backend = DiffusersBackend.load(images, tmp)
    size = mode.max_batch
    if budget.left() > reserve:
        a, b = (write_lora(model, tmp / f"{name}.safetensors", seed=k)
                for k, name in enumerate(("lora-a", "lora-b")))
        plain = _window(mode, size)
        with_a = _window(mode, size, loras=((str(a), 1.0),))
        with_b = _window(mode, size, loras=((str(b), 1.0),))
        for jobs in (plain, with_a, with_b):  # every LoRA loaded once, shapes warm
            backend.render(jobs, lambda *args: None)
        same = [_timed(lambda: backend.render(with_a, lambda *args: None), mode.device)
                for _ in range(5)]
        switching = [_timed(lambda jobs=jobs: backend.render(jobs, lambda *args: None),
                            mode.device) for jobs in (with_b, with_a) * 2 + (with_b,)]
        cost = (sum(switching) - sum(same)) / 5
        rows.append(ModelRow("LoRA switch between windows", f"{cost * 1000:+.0f} ms a window",
                             f"window of {size} with LoRA A then B alternating "
                             f"({sum(switching) / 5:.2f} s) vs A again ({sum(same) / 5:.2f} s), "
                             "5 windows each"))
    else:
        rows.append(ModelRow("LoRA switch between windows", "-", "skipped: time budget"))
    if budget.left() > reserve:
        cfg = Config()
        cfg.images = ImagesConfig(model=str(checkpoint), model_config=str(model), dtype=dtype,
                                  device=mode.device, max_loaded=1,
                                  models={"folder": ModelConfig(model=str(model))})
        pool = ModelPool(cfg, Catalog(cfg, "diffusers"))
        swaps = []
        for name in ("folder", "default", "folder"):
            window = _window(mode, size, model=name)
            swaps.append(_timed(lambda window=window: pool.prepare(window[0], lambda s: None),
                                mode.device))
        rows.append(ModelRow("model swap (max_loaded = 1)",
                             f"{sum(swaps) / len(swaps):.1f} s",
                             "unload one model, load the other, warm-up call included"))
        del pool
    else:
        rows.append(ModelRow("model swap (max_loaded = 1)", "-", "skipped: time budget"))
    for name in SCHEDULER_NAMES:
        if budget.left() < reserve:
            rows.append(ModelRow(f"sampler {name}", "-", "skipped: time budget"))
            continue
        jobs = _window(mode, size, scheduler=name)
        backend.render(jobs, lambda *args: None)  # made and warm
        wall = _timed(lambda jobs=jobs: backend.render(jobs, lambda *args: None), mode.device)
        rows.append(ModelRow(f"sampler {name}", f"{size / wall:.2f} images/s",
                             f"batch {size}, {mode.steps} steps"))
    return rows


# --- consistency modes (issue 20) ------------------------------------------------------------


@dataclass
class ConsistencyRow:
    mode: str
    images_per_s: float
    memory_gib: float | None = None
    note: str = ""


def _reference_png(color: str) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), color).save(buffer, "PNG")
    return buffer.getvalue()


def consistency_rows(tmp: Path, model: Path, mode: Mode, dtype: str, budget: Budget,
                     reserve: float) -> tuple[list[ConsistencyRow], dict[str, str]]:
    """images/s of a window of max_batch shots in each consistency mode, through the
    daemon's backend (DiffusersBackend.render, as the render process calls it), and the GPU
    memory each call peaks at; the IP-Adapter's load and resident memory apart."""
    import torch

    from gpu_daemon.images.diffusion import DiffusersBackend
    from gpu_daemon.testing import IP_ADAPTER_SD15_ENCODER, write_ip_adapter, write_lora

    cuda = mode.device == "cuda"
    notes: dict[str, str] = {}
    tmp.mkdir(parents=True, exist_ok=True)
    ip_adapter = write_ip_adapter(model, tmp / "ip-adapter",
                                  encoder=IP_ADAPTER_SD15_ENCODER if cuda else None)
    lora = write_lora(model, tmp / "character.safetensors", seed=7)
    images = ImagesConfig(model=str(model), dtype=dtype, device=mode.device,
                          max_batch=mode.max_batch)
    backend = DiffusersBackend.load(images, tmp)
    before = torch.cuda.memory_allocated() if cuda else 0
    backend.load_reference(ip_adapter, 0.6, False)
    if cuda:
        notes["IP-Adapter resident memory"] = (
            f"{(torch.cuda.memory_allocated() - before) / 2**30:.2f} GiB (image encoder "
            "ViT-H/14 size + adapter, random weights, "
            f"{dtype})")
    size = mode.max_batch
    red, blue = _reference_png("red"), _reference_png("blue")
    windows: list[tuple[str, Callable[[int], list[Any]], str]] = [
        ("text", lambda k: _window(mode, size), "the description in the prompt only"),
        ("reference, 1 character", lambda k: _window(
            mode, size, consistency="reference", references=(red,)), "IP-Adapter"),
        ("reference, 2 characters", lambda k: _window(
            mode, size, consistency="reference", references=(red, blue)),
         "IP-Adapter with a mask each"),
        ("attention, first window", lambda k: _window(
            mode, size, consistency="attention", identities=((f"new-{k}", None),)),
         "every shot shows the character; its bank made"),
        ("attention, later window", lambda k: _window(
            mode, size, consistency="attention", identities=(("kept", None),)),
         "the bank read (kept in memory after the first call)"),
        ("lora", lambda k: _window(mode, size, consistency="lora",
                                   loras=((str(lora), 1.0),)),
         "the character's LoRA on (rank 4)"),
    ]
    for _, make, _ in windows:  # warm: every shape, the LoRA loaded, a bank kept
        backend.render(make(0), lambda *args: None)
    # Round by round, every mode once a round: a machine that drifts (a shared CPU) moves
    # every mode alike instead of the last ones.
    walls: dict[str, list[float]] = {label: [] for label, _, _ in windows}
    peaks: dict[str, float] = dict.fromkeys(walls, 0.0)
    for k in range(1, CONSISTENCY_CALLS + 1):
        for label, make, _ in windows:
            if budget.left() < reserve:
                break
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            jobs = make(k)
            walls[label].append(_timed(lambda jobs=jobs: backend.render(
                jobs, lambda *args: None), mode.device))
            if cuda:
                peaks[label] = max(peaks[label], torch.cuda.max_memory_allocated() / 2**30)
            made = backend.made_identities(jobs[0])  # when the call made a bank
            if made:
                notes["attention bank"] = (
                    f"{len(made[jobs[0].identities[0][0]]) / 2**20:.2f} MiB per character "
                    f"at {mode.steps} steps (float16, kept in the bucket)")
    # The median call: one slow call on a shared machine moves it least.
    rows = [ConsistencyRow(label, size / statistics.median(walls[label]),
                           peaks[label] if cuda else None, note)
            if walls[label] else ConsistencyRow(label, float("nan"),
                                                note="skipped: time budget")
            for label, _, note in windows]
    return rows, notes


# --- the run -----------------------------------------------------------------------------------


def run(mode: Mode, budget_s: float
        ) -> tuple[list[Row], list[ModelRow], list[ConsistencyRow], dict[str, Any]]:
    from gpu_daemon.testing import build_sd15_pipeline, build_tiny_pipeline

    budget = Budget(budget_s)
    rows: list[Row] = []
    notes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp_dir:
        tmp = Path(tmp_dir)
        started = time.perf_counter()
        build = build_sd15_pipeline if mode.device == "cuda" else build_tiny_pipeline
        model = build(tmp / "model")
        notes["model build + save"] = f"{time.perf_counter() - started:.0f} s"
        first, *others = mode.dtypes
        # The essentials first; what the budget cannot fit is reported as skipped.
        rows += raw_rows(model, mode, first, False, budget, reserve=60)
        rows.append(daemon_b1_row(tmp / "b1", model, mode, first))
        rows += full_path_rows(tmp / "full", model, mode, first)
        models = model_rows(tmp / "models", model, mode, first, budget, reserve=60)
        identity, identity_notes = consistency_rows(tmp / "consistency", model, mode, first,
                                                    budget, reserve=45)
        notes.update(identity_notes)
        for dtype in others:
            rows += raw_rows(model, mode, dtype, False, budget, reserve=30)
        if mode.compile:
            rows += raw_rows(model, mode, first, True, budget, reserve=90)
        else:
            notes["compile"] = "not measured: torch.compile is used on CUDA only"
        # The baseline once more, last: how far the machine drifted during the run.
        again = raw_rows(model, dataclasses.replace(mode, raw_batches=(1,)), first, False,
                         budget, reserve=10)
        rows += [dataclasses.replace(r, variant="raw `pipe()` loop, again at the end")
                 for r in again]
    notes["wall"] = f"{budget_s - budget.left():.0f} s of a {budget_s:.0f} s budget"
    if mode.device == "cpu":
        notes["consistency modes"] = (
            "at this size a call's fixed costs (scheduler, VAE, PNG-sized references through "
            "the image processor) outweigh what each mode adds, so their ratios to text are "
            "within the run's noise; the CUDA run at SD 1.5 size tells them apart")
        notes["noise"] = ("a CPU run shares its cores with the daemon's other processes and "
                          "anything else running: the two raw batch-1 rows show the drift")
    return rows, models, identity, notes


def markdown(mode: Mode, rows: list[Row], models: list[ModelRow],
             identity: list[ConsistencyRow], notes: dict[str, Any]) -> str:
    base = next(r.images_per_s for r in rows
                if r.variant.startswith("raw") and r.batch == "1" and not r.compiled)
    width, height = mode.frame
    table = harness.table(
        ["variant", "dtype", "compile", "batch", "images/s", "× raw batch 1",
         "pipeline calls per image", "GPU memory peak (GiB)", "duty cycle", "note"],
        [[r.variant, r.dtype, "on" if r.compiled else "off", r.batch,
          "-" if r.images_per_s != r.images_per_s else f"{r.images_per_s:.2f}",
          "-" if r.images_per_s != r.images_per_s else f"{r.images_per_s / base:.2f}",
          f"{r.calls_per_image:.2f}",
          "-" if r.memory_gib is None else f"{r.memory_gib:.1f}",
          "-" if r.duty is None else f"{r.duty:.2f}", r.note] for r in rows])
    machine = harness.machine()
    if mode.device == "cuda":
        import torch

        machine["gpu"] = torch.cuda.get_device_name(0)
    out = [
        "# Device check (bench/gpu.sh)\n",
        f"**{mode.label}.** {width}×{height} frames (the default aspect's frame for [images] "
        f"{mode.area[0]}×{mode.area[1]}, storyboard_contract/frames.py), {mode.steps} steps, "
        f"max_batch {mode.max_batch}, {mode.images} images "
        "per raw/daemon variant; ratios are to the raw batch-1 loop in "
        f"{mode.dtypes[0]} without compile.\n",
        table, "",
        "## Models: single file, LoRA switches, a swap, samplers\n",
        harness.table(["measure", "value", "note"], [[r.measure, r.value, r.note]
                                                     for r in models]), "",
        f"## Consistency modes ({'CUDA' if mode.device == 'cuda' else 'CPU-small'})\n",
        f"A window of {mode.max_batch} shots per call through the daemon's backend, "
        f"{mode.dtypes[0]}; ratios are to text.\n",
        consistency_table(identity), "",
        *[f"- {k}: {v}" for k, v in notes.items()], "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()), "",
    ]
    return "\n".join(out)


def consistency_table(rows: list[ConsistencyRow]) -> str:
    text = next((r.images_per_s for r in rows if r.mode == "text"), float("nan"))

    def number(value: float, digits: int = 2) -> str:
        return "-" if value != value else f"{value:.{digits}f}"

    return harness.table(
        ["mode", "images/s", "× text", "GPU memory peak (GiB)", "note"],
        [[r.mode, number(r.images_per_s), number(r.images_per_s / text),
          "-" if r.memory_gib is None else f"{r.memory_gib:.1f}", r.note] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-small", action="store_true",
                        help="run on the CPU at a small size even where CUDA is available")
    parser.add_argument("--budget-s", type=float, default=480)
    parser.add_argument("--out", type=Path, default=harness.ROOT / "bench" / "results-gpu.md")
    args = parser.parse_args()
    import torch

    mode = GPU if torch.cuda.is_available() and not args.cpu_small else CPU_SMALL
    print(f"device check: {mode.label}", flush=True)
    rows, models, identity, notes = run(mode, args.budget_s)
    text = markdown(mode, rows, models, identity, notes)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
