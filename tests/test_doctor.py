"""`storyboard doctor` on a real local stack: all green when healthy, and for each part that
stops, exactly the checks it breaks fail, each with the fix for that part."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import pytest
from fixtures_stack import clean_env, stack_config, storyboard

from storyboard_cli.stack import frp, processes
from storyboard_cli.stack.doctor import Doctor
from storyboard_cli.stack.supervisor import load_stack, prepare


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        path = stack_config(root, mode="stcp", workers=1, serve=True)
        stack, _ = load_stack(path, environ=clean_env(), generate=True)
        try:
            statuses = stack.up()
            assert all(s.ok for s in statuses), statuses
            yield path
        finally:
            load_stack(path, environ=clean_env())[0].down()


def doctor(path) -> dict[str, tuple[str, str]]:
    cfg, _, _ = prepare(path, clean_env(), generate=False)
    return {c.name: (c.status, c.hint) for c in Doctor(cfg).run()}


def cli_doctor(path):
    return storyboard(path.parent, "doctor", "--json")


@dataclass
class Outage:
    part: str
    failing: set[str]
    hint: str  # in the hint of the first failing check named here
    hint_of: str
    restore: bool = True


# In this order: the last two are not restored (frps's clients take up to ~20 s to return).
OUTAGES = [
    Outage("worker-1", {"workers"}, "storyboard worker", "workers"),
    Outage("serve", {"serve"}, "start it: `storyboard up`", "serve"),
    Outage("daemon", {"frpc", "daemon"}, "GPU daemon is down", "frpc"),
    Outage("frpc", {"frpc", "daemon"}, "frpc is not running", "frpc"),
    Outage("visitor", {"visitor", "daemon"}, "stcp visitor", "visitor"),
    Outage("s3", {"daemon-bucket", "bucket"}, "S3 endpoint does not answer", "bucket"),
    Outage("redis", {"redis"}, "start Redis", "redis"),
    Outage("frps", {"frps", "frpc", "visitor", "daemon"}, "start frps", "frps", restore=False),
]


def test_a_healthy_stack_passes_every_check(running_stack):
    done = cli_doctor(running_stack)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c["status"] for c in json.loads(done.stdout)["checks"]}
    assert checks == dict.fromkeys(
        ["config", "store", "redis", "workers", "frps", "frpc", "visitor", "daemon", "planner",
         "daemon-bucket", "models", "bucket", "serve"], "ok")


def test_on_the_gpu_side_doctor_checks_the_daemon_its_model_bucket_and_frpc_and_writes_nothing(
    running_stack, tmp_path,
):
    cfg, _, _ = prepare(running_stack, clean_env(), generate=False)
    cfg.store.path = str(tmp_path / "never.db")
    checks = {c.name: (c.status, c.detail) for c in Doctor(cfg, side="gpu").run()}
    assert list(checks) == ["config", "daemon", "model", "planner", "bucket", "frps", "frpc"]
    assert {status for status, _ in checks.values()} == {"ok"}, checks
    assert "sketch backend" in checks["model"][1]
    assert "write, read back, presigned fetch ok" in checks["bucket"][1]
    assert not (tmp_path / "never.db").exists()


def test_without_a_daemon_token_the_daemon_check_says_so_and_where_to_set_it(running_stack):
    cfg, _, _ = prepare(running_stack, clean_env(), generate=False)
    cfg.daemon.token = ""
    check = {c.name: c for c in Doctor(cfg).run()}["daemon"]
    assert check.status == "fail"
    assert check.detail.startswith("no daemon token: STORYBOARD_DAEMON_TOKEN is not set")
    assert f"set STORYBOARD_DAEMON_TOKEN (the GPU daemon's value) in {running_stack.parent}" \
        in check.hint


def test_each_stopped_part_fails_its_checks_with_its_fix_and_up_restores_it(running_stack):
    path = running_stack
    stack = load_stack(path, environ=clean_env())[0]
    cfg = stack.cfg
    for outage in OUTAGES:
        before = {r.name: r.pid for r in stack.records()}
        processes.stop_pid(before[outage.part], timeout=5)
        if outage.part == "daemon":  # frpc notices at its next health check (every 2 s)
            assert processes.wait_until(
                lambda: (frp.proxy_status(cfg) or {}).get("status") == "check failed", 10)
        if outage.part == "daemon":
            # frpc and the visitor run: `ps` says they wait for the daemon, which is down.
            parts = {s.name: (s.state, s.detail) for s in stack.ps()}
            assert parts["daemon"][0] == "not running"
            assert parts["frpc"] == ("waiting", "runs, but daemon is not running")
            assert parts["visitor"] == ("waiting", "runs, but daemon is not running")
        report = doctor(path)
        failing = {name for name, (status, _) in report.items() if status == "fail"}
        assert failing == outage.failing, (outage.part, report)
        assert outage.hint in report[outage.hint_of][1], (outage.part, report)
        if outage.part == "redis":
            assert report["workers"][0] == "skip"
        if not outage.restore:
            continue
        restored = {s.name: s for s in load_stack(path, environ=clean_env())[0].up()}
        assert all(s.ok for s in restored.values()), (outage.part, restored)
        assert restored[outage.part].state == "started"
        after = {r.name: r.pid for r in stack.records()}
        assert {n: p for n, p in after.items() if n != outage.part} == {
            n: p for n, p in before.items() if n != outage.part}, outage.part
        assert {s for s, _ in doctor(path).values()} == {"ok"}, outage.part

    done = cli_doctor(path)  # frps is still down
    assert done.returncode == 3
    assert "frps" in json.loads(done.stdout)["error"]


def test_a_broken_config_is_a_usage_error(tmp_path):
    (tmp_path / "storyboard.toml").write_text('[frp]\nmode = "udp"\n')
    done = storyboard(tmp_path, "doctor")
    assert done.returncode == 2
    assert "frp.mode" in done.stdout and "storyboard init" in done.stdout


def test_a_bucket_that_does_not_exist_is_named_with_how_to_create_it(s3_server, tmp_path,
                                                                      monkeypatch):
    from fixtures_daemon import write_toml

    from storyboard_contract.config import load_config
    from storyboard_contract.s3 import BucketProblem, probe_bucket

    path = write_toml(tmp_path / "storyboard.toml",
                      {"s3": {"bucket": f"missing-{secrets.token_hex(4)}"}})
    env = {**clean_env(), **s3_server.env()}
    env.pop("TOS_BUCKET", None)
    env.pop("STORYBOARD_S3_BUCKET", None)
    cfg = load_config(path, environ=env)
    with pytest.raises(BucketProblem) as problem:
        probe_bucket(cfg.s3)
    assert "does not exist" in str(problem.value)
    assert "storyboard bucket create" in problem.value.hint

    monkeypatch.setattr("os.environ", env)
    created = storyboard_in_process("bucket", "create", "--config", str(path), "--json")
    assert created == {"bucket": cfg.s3.bucket, "endpoint": cfg.s3.endpoint, "created": True}
    assert "ok" in probe_bucket(cfg.s3)
    again = storyboard_in_process("bucket", "create", "--config", str(path), "--json")
    assert again["created"] is False


def storyboard_in_process(*args: str) -> dict:
    from click.testing import CliRunner

    from storyboard_cli.cli import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def daemon_status(planner: str, prompt_language: str = "en"):
    from storyboard_contract.wire import DaemonStatus, ModelStatus

    return DaemonStatus(
        version="x", planner=planner, image_backend="diffusers", model="m.safetensors",
        model_loaded=True, device="cuda:0", busy=False, waiting=0, render_busy_s=0,
        renders=0, pipeline_calls=0, uptime_s=1, prompt_language=prompt_language,
        models=[ModelStatus(name="default", source="m.safetensors", kind="checkpoint",
                            architecture="SD 1.x", text_encoder="CLIP", default=True,
                            loaded=True),
                ModelStatus(name="kolors", source="kolors", kind="diffusers folder",
                            architecture="Kolors", text_encoder="ChatGLM3",
                            reads_chinese=True)])


def test_the_models_check_warns_about_chinese_stories_for_an_english_only_model(tmp_path):
    from storyboard_cli.store import Store
    from storyboard_contract.config import Config

    cfg = Config()
    cfg.store.path = str(tmp_path / "sb.db")
    store = Store(tmp_path / "sb.db", create=True)
    store.create_project("en", "Old Tom climbed the stairs.", "movie")
    store.create_project("zh", "清晨，老陈推开木门。", "movie")
    store.create_project("zh on kolors", "清晨，老陈推开木门。", "movie",
                         settings={"model": "kolors"})
    store.close()
    url = "http://daemon"
    rules = Doctor(cfg)
    rules.statuses[url] = daemon_status("rules")
    check = _models_check(rules, url)
    assert check.status == "warn"
    assert check.detail.startswith("project(s) 2: Chinese (or Japanese, Korean) stories render "
                                   "with a model that reads English only, and the rules planner")
    assert 'prompt_language = "en"' in check.detail and "--model NAME" in check.detail
    # The LLM planner writing English prompts: nothing to warn about.
    llm = Doctor(cfg)
    llm.statuses[url] = daemon_status("openai")
    check = _models_check(llm, url)
    assert check.status == "ok" and check.detail.startswith(
        "default (default): SD 1.x, CLIP (English only), loaded; kolors: Kolors, ChatGLM3 "
        "(reads Chinese and English), not loaded")


def _models_check(doctor: Doctor, url: str):
    from storyboard_cli.stack.doctor import _run

    return _run("models", lambda: doctor.check_languages(url))
