"""Submitting tasks to real Redis (no worker): job ids are task ids, queueing is idempotent,
regen-shot records its seed, and retry refuses work that is still going to run."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.job import Job

from storyboard_cli.service import LocalService
from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import (
    connect_redis,
    enqueue_plan,
    retry_task,
    submit_regen,
    submit_storyboard,
)
from storyboard_contract.config import QueueConfig, load_config
from storyboard_contract.errors import NotFound, UsageError
from storyboard_contract.wire import shot_seed


@pytest.fixture()
def env(tmp_path, redis_url):
    path = tmp_path / "storyboard.toml"
    path.write_text(f'[store]\npath = "sb.db"\n[redis]\nurl = "{redis_url}"\n', encoding="utf-8")
    config = load_config(path, environ={})
    store = Store(config.store_path)
    yield config, store, connect_redis(redis_url)
    store.close()


def test_a_storyboard_task_is_one_plan_job_whose_id_is_the_task_id(env):
    config, store, redis = env
    project = store.create_project("p", "A story.", "movie")
    task = submit_storyboard(store, redis, config, project["id"], "noir", no_images=True)
    plan_q = Queue(config.queue.plan_queue, connection=redis)
    assert plan_q.job_ids == [task["id"]]
    job = Job.fetch(task["id"], connection=redis)
    assert job.func_name == "storyboard_cli.tasks.jobs.plan_job" and job.args == (task["id"],)
    assert (job.timeout, job.retries_left) == (config.queue.job_timeout, config.queue.retries)
    # The project's render settings as they were when it was queued: all its shots render
    # alike, whatever `storyboard settings` changes meanwhile.
    assert store.get_task(task["id"])["params"] == {
        "style": "noir", "no_images": True, "revision": 1,
        "render": {"model": None, "loras": [], "scheduler": None, "steps": None, "cfg": None,
                   "negative_prompt": None, "consistency": None}}
    assert enqueue_plan(redis, config.queue, task["id"]) == []  # already queued: not again
    assert plan_q.job_ids == [task["id"]]


def test_the_default_retries_ride_out_about_four_minutes_of_outage(env):
    """The waits RQ itself computes for a job queued with the shipped settings: doubling
    from 2 s, capped at a minute, the last one repeated."""
    from pathlib import Path

    _, store, redis = env
    shipped = load_config(Path(__file__).parent.parent / "storyboard.toml", environ={}).queue
    assert (shipped.retries, shipped.backoff) == (QueueConfig().retries, QueueConfig().backoff)
    project = store.create_project("p", "A story.", "movie")
    task = store.create_task("storyboard", project["id"])
    enqueue_plan(redis, shipped, task["id"])
    job = Job.fetch(task["id"], connection=redis)
    waits = []
    while job.retries_left:
        waits.append(job.get_retry_interval())
        job.retries_left -= 1
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]
    assert sum(waits) == 242


def test_regen_shot_records_a_fresh_seed_unless_one_is_given(env):
    config, store, redis = env
    project = store.create_project("p", "A story.", "movie")
    plan = store.create_task("storyboard", project["id"])
    store.save_plan(plan["id"], project["id"], [{
        "idx": 0, "description": "d", "prompt": "the keeper", "negative_prompt": "",
        "camera": "wide", "dialogue": None, "duration": 2.0, "seed": shot_seed(plan["id"], 0)}],
        with_renders=True)
    shot_id = store.task_renders(plan["id"])[0]["shot_id"]
    seeds = []
    for given in (None, None, 99):
        task = submit_regen(store, redis, config, shot_id, None, None, given)
        assert Job.fetch(task["id"], connection=redis).args == (task["id"], shot_id)
        seeds.append(store.get_render(task["id"], shot_id)["seed"])
        assert task["params"]["seed"] == seeds[-1]
    assert seeds[2] == 99 and seeds[0] != seeds[1]
    # The service checks the seed and the prompt (storyboard_cli/inputs.py) before queueing.
    service = LocalService(config)
    try:
        with pytest.raises(UsageError, match="--seed"):
            service.regen_shot(shot_id, seed=2**32)
        with pytest.raises(UsageError, match="limit is 1000"):
            service.regen_shot(shot_id, prompt="x" * 1001)
    finally:
        service.close()
    assert len(Queue(config.queue.render_queue, connection=redis)) == 3
    with pytest.raises(NotFound, match="no shot with id 404"):
        submit_regen(store, redis, config, 404, None, None, None)


def test_retry_refuses_a_task_whose_jobs_are_still_queued(env):
    config, store, redis = env
    project = store.create_project("p", "A story.", "movie")
    task = submit_storyboard(store, redis, config, project["id"], None, False)
    with pytest.raises(UsageError, match="still being planned"):
        retry_task(store, redis, config, task["id"])
