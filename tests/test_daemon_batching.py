"""The render queue's batching policy, on the tiny diffusers pipeline loaded in this process."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from gpu_daemon.images import RenderJob
from gpu_daemon.images.batching import Cancelled, RenderQueue
from storyboard_contract.config import ImagesConfig


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path):
    from gpu_daemon.images.diffusion import DiffusersBackend

    return DiffusersBackend.load(ImagesConfig(model=str(tiny_model_dir)), Path.cwd())


def job(seed: int, steps: int = 3, negative: str = "") -> RenderJob:
    return RenderJob(f"shot {seed}", negative, seed, 64, 64, steps, 5.0)


class Gate:
    """Holds the render thread inside its current call until opened."""

    def __init__(self) -> None:
        self.entered, self.opened = threading.Event(), threading.Event()

    def __call__(self, step: int, total: int) -> None:
        self.entered.set()
        assert self.opened.wait(30)


def test_a_lone_request_starts_at_once_in_a_batch_of_one(backend):
    queue = RenderQueue(backend, max_batch=4)
    try:
        rendered = queue.submit(job(1)).future.result(30)
        assert rendered.batch_size == 1 and rendered.image.size == (64, 64)
        assert (queue.stats.pipeline_calls, queue.stats.renders) == (1, 1)
    finally:
        queue.close()


def test_waiting_requests_with_equal_settings_share_one_call(backend):
    queue = RenderQueue(backend, max_batch=3)
    gate = Gate()
    try:
        blocker = queue.submit(job(0), gate)
        assert gate.entered.wait(30)
        same = [queue.submit(job(seed)) for seed in (1, 2, 3, 4)]
        other = queue.submit(job(5, negative="blurry"))
        assert queue.waiting == 5
        gate.opened.set()
        results = [t.future.result(30) for t in (blocker, *same, other)]
    finally:
        queue.close()
    # The oldest request goes first, and takes along its equals up to max_batch; the request
    # with another negative prompt waits for its own call.
    assert [r.batch_size for r in results] == [1, 3, 3, 3, 1, 1]
    assert queue.stats.pipeline_calls == 4 and queue.stats.renders == 6


def test_a_batched_image_is_the_image_of_its_own_seed(backend):
    singles = {seed: np.asarray(backend.render([job(seed)], lambda s, t: None)[0], float)
               for seed in (11, 12, 13)}
    batched = backend.render([job(seed) for seed in (11, 12, 13)], lambda s, t: None)
    for seed, image in zip((11, 12, 13), batched, strict=True):
        distances = {s: np.abs(np.asarray(image, float) - ref).mean() for s, ref in singles.items()}
        # Float noise may move a pixel by a level; another seed is a different image.
        assert distances[seed] < 1.0
        assert min(d for s, d in distances.items() if s != seed) > 10 * max(distances[seed], 0.1)


def test_a_cancelled_request_is_skipped_and_an_abandoned_call_stops(backend):
    queue = RenderQueue(backend, max_batch=4)
    gate = Gate()
    try:
        running = queue.submit(job(0, steps=4), gate)
        assert gate.entered.wait(30)
        dropped = queue.submit(job(1, negative="x"))
        dropped.cancel()
        running.cancel()
        gate.opened.set()
        with pytest.raises(Cancelled):
            running.future.result(30)
        assert dropped.future.cancelled()
        after = queue.submit(job(2)).future.result(30)
    finally:
        queue.close()
    assert after.batch_size == 1
    assert queue.stats.pipeline_calls == 2  # the abandoned call and the last one


def test_progress_reaches_every_request_of_a_batch(backend):
    queue = RenderQueue(backend, max_batch=4)
    gate = Gate()
    seen: dict[int, list[tuple[int, int]]] = {1: [], 2: []}
    try:
        first = queue.submit(job(0), gate)
        assert gate.entered.wait(30)
        tickets = [queue.submit(job(seed), lambda s, t, seed=seed: seen[seed].append((s, t)))
                   for seed in (1, 2)]
        gate.opened.set()
        for t in (first, *tickets):
            t.future.result(30)
    finally:
        queue.close()
    assert seen[1] == seen[2] == [(1, 3), (2, 3), (3, 3)]


def test_prompts_are_fitted_with_the_loaded_tokenizer(backend):
    from gpu_daemon.styles import compose

    # A pipeline call leaves its tokenizer padding to 77: counting must not be fooled by it.
    backend.render([job(1)], lambda s, t: None)
    # The tiny tokenizer is byte-level: a Chinese character costs three tokens.
    content = "夜色中，老人推开木门，看见院子里站着一个陌生的孩子，" * 4
    positive, negative = compose(content, "watercolor", backend.token_count())
    tokenizer = backend.pipe.tokenizer
    for prompt in (positive, negative):
        assert len(tokenizer(prompt).input_ids) <= 77
    assert positive.startswith("watercolor painting, 夜色中")
