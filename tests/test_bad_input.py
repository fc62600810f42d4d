"""Bad input at the CLI, as a user types it: control characters, hostile text in the store, ids
of every wrong shape, usage mistakes and credentials in settings. Each is one line on stderr
(and {"error": ...} with --json), exit 2, and changes nothing; no service is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storyboard_cli.store import Store
from storyboard_cli.tasks.jobs import planned_row
from storyboard_contract.wire import PlannedShot

ESC = "\x1b[31m"  # starts a terminal escape sequence: red


def store_of(config_file: Path) -> Store:
    return Store(config_file.parent / "storyboard.db")


def planned_project(config_file: Path, title: str = "lighthouse", style: str = "noir",
                    story: str = "The keeper climbed.\n", description: str = "The keeper climbs",
                    error: str | None = None) -> tuple[int, int, str]:
    """A project with a planned storyboard task of one shot, written straight to the store
    (as data from before these checks, or from an LLM): (project id, shot id, task id)."""
    store = store_of(config_file)
    try:
        project = store.create_project(title, story, style)
        task = store.create_task("storyboard", project["id"])
        shot = PlannedShot(index=0, description=description, action=description,
                           prompt="a keeper on stairs")
        store.save_plan(task["id"], project["id"], [planned_row(task["id"], shot)],
                        with_renders=True)
        if error:
            store.fail_task(task["id"], error)
        shot_id = store.task_renders(task["id"])[0]["shot_id"]
        return project["id"], shot_id, task["id"]
    finally:
        store.close()


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# --- control characters in one-line fields ----------------------------------------------------


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--style", "noir\nx", "a newline"),
    ("--style", f"{ESC}noir", "ESC"),
    ("--title", "the\tkeeper", "a tab"),
    ("--title", "rtl\u202etxt", "a control character"),
])
def test_new_refuses_control_characters_in_style_and_title(cli, config_file, tmp_path, option,
                                                           value, named):
    (tmp_path / "s.txt").write_text("The keeper climbed.\n")
    result = cli("new", "s.txt", option, value, "--json")
    line = one_line_error(result)
    what = option.removeprefix("--")
    assert f"the {what} must be plain text on one line; it contains {named}" in line
    assert json.loads(result.stdout)["error"] == line.removeprefix("Error: ")
    assert store_of(config_file).db["projects"].count == 0


def test_generate_and_regen_shot_refuse_control_characters_before_queueing(cli, config_file):
    # Nothing listens at this Redis: the input must be refused before anything is queued.
    config_file.write_text('[store]\npath = "storyboard.db"\n[redis]\nurl = "redis://127.0.0.1:9/0"\n')
    project, shot, _ = planned_project(config_file)
    tasks_before = store_of(config_file).db["tasks"].count
    for args in (["generate", str(project), "--style", "noir\nx"],
                 ["regen-shot", str(shot), "--prompt", f"stairs{ESC}"],
                 ["regen-shot", str(shot), "--style", "no\rir"]):
        assert "must be plain text on one line" in one_line_error(cli(*args)), args
    assert store_of(config_file).db["tasks"].count == tasks_before


# --- text from users, stories and LLMs is shown, never obeyed ---------------------------------


def test_show_list_and_status_print_control_characters_as_visible_escapes(cli, config_file):
    project, _, task = planned_project(
        config_file, title=f"{ESC}lighthouse", style=f"noir{ESC}",
        story=f"Line one.\n{ESC}Line two.\x07\n", description=f"The keeper{ESC} climbs\x08",
        error=f"the LLM said {ESC}no")
    shown = cli("show", str(project))
    listed = cli("list")
    status = cli("status", task)
    for result in (shown, listed, status):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\x08" not in result.output
    assert "\\x1b[31mlighthouse" in shown.stdout and "noir\\x1b[31m" in shown.stdout
    assert "Line one.\n\\x1b[31mLine two.\\x07" in shown.stdout  # its lines stay lines
    assert "The keeper\\x1b[31m climbs\\x08" in shown.stdout
    assert "error: the LLM said \\x1b[31mno" in shown.stdout
    assert "\\x1b" in listed.stdout  # (the table wraps the title)
    assert "error: the LLM said \\x1b[31mno" in status.stdout
    watched = cli("status", task, "--watch")
    assert "\x1b" not in watched.output
    assert f"task {task} failed: the LLM said \\x1b[31mno" in watched.stderr


def test_json_output_escapes_every_control_character():
    from storyboard_cli import output

    text = f"{ESC}\x9b2J\u202e"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        output.print_json({"title": text})
    printed = buffer.getvalue()
    assert printed == '{"title": "\\u001b[31m\\u009b2J\\u202e"}\n'
    assert json.loads(printed)["title"] == text
    # DEL is ASCII but a control too: all-ASCII output is searched for it as well.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        output.print_json({"title": "del\x7f", "plain": "ascii"})
    assert buffer.getvalue() == '{"title": "del\\u007f", "plain": "ascii"}\n'


# --- ids ------------------------------------------------------------------------------------------

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(("args", "error"), [
    (["show", HUGE], f"no project with id or title '{HUGE}'"),
    (["show", "²"], "no project with id or title '²'"),
    (["show", "-1"], "invalid project id '-1'"),
    (["generate", "-1"], "invalid project id '-1'"),
    (["links", "1.5"], "no project with id or title '1.5'"),
    (["regen-shot", HUGE], f"no shot with id {HUGE}"),
    (["regen-shot", "²"], "invalid shot id '²'"),
    (["regen-shot", "-1"], "invalid shot id '-1'"),
    (["regen-shot", "1.5"], "invalid shot id '1.5'"),
    (["regen-shot", "0"], "no shot with id 0"),
    (["status", "-1"], "invalid task id '-1'"),
    (["status", "²"], "invalid task id '²'"),
    (["retry", HUGE], f"no task with id '{HUGE}'"),
])
def test_every_command_answers_a_bad_id_in_one_line_with_exit_2_and_json(cli, args, error):
    plain = one_line_error(cli(*args))
    assert error in plain, plain
    result = cli(*args, "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": plain.removeprefix("Error: ")}


@pytest.mark.parametrize("args", [
    ["bogus"], ["new"], ["show", "1", "--jsn"], ["status", "t", "--timeout", "-1"],
    ["links", "1", "--expires", "1.5"], ["frp", "render"], ["frp", "bogus"],
])
def test_usage_errors_are_one_line_with_exit_2_and_json(cli, args):
    line = one_line_error(cli(*args))
    assert "--help`)" in line  # where the usage is
    result = cli(*args, "--json")
    assert json.loads(result.stdout) == {"error": line.removeprefix("Error: ")}


# --- credentials in settings ----------------------------------------------------------------------


def test_config_never_shows_credentials_embedded_in_urls(cli, config_file, monkeypatch):
    monkeypatch.setenv("STORYBOARD_REDIS_URL", "redis://:hunter2@queue.example:6379/0")
    monkeypatch.setenv("STORYBOARD_PLANNER_BASE_URL", "https://bob:pa55@llm.example/v1")
    monkeypatch.setenv("STORYBOARD_S3_ENDPOINT", "https://AKIAKEY@s3.example?token=t0ken")
    monkeypatch.setenv("STORYBOARD_DAEMON_URL", "http://127.0.0.1:17861/?api_key=k3y")
    shown = cli("config", "--json")
    text = cli("config")
    for result in (shown, text):
        assert result.exit_code == 0, result.output
        for secret in ("hunter2", "pa55", "AKIAKEY", "t0ken", "k3y"):
            assert secret not in result.stdout
    data = json.loads(shown.stdout)
    assert data["redis"]["url"] == "redis://:***@queue.example:6379/0"
    assert data["planner"]["base_url"] == "https://bob:***@llm.example/v1"
    assert data["s3"]["endpoint"] == "https://***@s3.example?token=***"
    assert data["daemon"]["url"] == "http://127.0.0.1:17861/?api_key=***"


@pytest.mark.parametrize(("options", "says"), [
    (["--model", "sdxl"], "unknown model 'sdxl'; storyboard.toml names default, hunyuan"),
    (["--scheduler", "dpm_fast"], "unknown scheduler 'dpm_fast'; use one of default, "),
    (["--steps", "0"], "--steps must be a whole number between 1 and 150"),
    (["--cfg", "31"], "--cfg must be between 0 and 30"),
    (["--lora", "../ink.safetensors"], "--lora '../ink.safetensors': name a file inside the GPU "
                                       "daemon's images.lora_dir, as a relative path"),
    (["--lora", "/loras/ink.safetensors"], "as a relative path (FILE or FILE:SCALE)"),
    (["--lora", "ink.ckpt"], "--lora 'ink.ckpt': LoRAs are .safetensors files"),
    (["--lora", "ink.safetensors:7"], "the scale must be between -4 and 4"),
    # A scale that is not a number is named as such, not as a file of the wrong kind.
    (["--lora", "ink.safetensors:strong"], "--lora 'ink.safetensors:strong': the scale after "
                                           "':' must be a number between -4 and 4"),
    (["--lora", "ink.safetensors:nan"], "the scale after ':' must be a number"),
    (["--negative", "text\nwatermark"], "--negative"),
])
def test_new_refuses_render_settings_the_daemon_could_not_take(cli, config_file, tmp_path,
                                                                options, says):
    config_file.write_text('[store]\npath = "storyboard.db"\n[images]\nmodel = "m.safetensors"\n'
                           '[images.models.hunyuan]\nmodel = "hunyuan"\n', encoding="utf-8")
    (tmp_path / "story.txt").write_text("The keeper climbed.\n", encoding="utf-8")
    line = one_line_error(cli("new", "story.txt", *options))
    assert says in line
    assert not (tmp_path / "storyboard.db").exists() or \
        store_of(config_file).db["projects"].count == 0


def test_a_host_without_models_refuses_any_model_name_and_says_where_to_list_them(
        cli, tmp_path):
    (tmp_path / "story.txt").write_text("The keeper climbed.\n", encoding="utf-8")
    line = one_line_error(cli("new", "story.txt", "--model", "sdxl"))
    assert "this host's storyboard.toml names no models; list them there as the GPU box's " \
           "does ([images] model, [images.models.NAME] tables)" in line
