"""Naming things as a person types them: a task by the first 8 characters of its id, a shot as
PROJECT/NUMBER from what `show` prints, a project by a title only it has, and the common options
before the command. No service is needed: nothing here reaches Redis (its URL is a dead port)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_queue import stored_storyboard as plan

from storyboard_cli import ids, views
from storyboard_cli.store import Store
from storyboard_contract.errors import NotFound, UsageError

DEAD_REDIS = '[redis]\nurl = "redis://127.0.0.1:9/0"\n'


@pytest.fixture()
def config(config_file: Path) -> Path:
    config_file.write_text(f'[store]\npath = "storyboard.db"\n{DEAD_REDIS}', encoding="utf-8")
    return config_file


@pytest.fixture()
def store(config: Path) -> Store:
    store = Store(config.parent / "storyboard.db")
    yield store
    store.close()


def error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    (line,) = result.stderr.strip().splitlines()
    return line


# --- task ids -----------------------------------------------------------------------------------


def test_a_unique_prefix_of_8_characters_names_a_task_and_a_shared_one_lists_them(cli, store):
    project = store.create_project("p", "Once.", "movie")["id"]
    alone = plan(store, project, 1, task_id="6be56089-0000-4000-8000-000000000001")
    twins = [plan(store, project, 1, task_id=f"a1b2c3d4-{n}000-4000-8000-000000000000")
             for n in (1, 2)]

    assert store.find_task(alone) == alone
    assert store.find_task("6be56089") == alone == store.find_task("6BE56089-00")
    shown = cli("status", "6be56089", "--json")
    assert json.loads(shown.stdout)["id"] == alone
    assert f"Task {alone} " in cli("status", "6be56089").stdout

    line = error_line(cli("status", "a1b2c3d4"))
    assert f"task id 'a1b2c3d4' is ambiguous: it starts the ids of 2 tasks ({twins[0]}, " \
           f"{twins[1]}); give more of it" in line
    assert store.find_task("a1b2c3d4-2") == twins[1]
    # Fewer than 8 characters name nothing, even when only one id starts with them.
    assert "a shortened id needs at least 8 characters" in error_line(cli("status", "6be5608"))
    for verb in ("retry", "cancel"):  # the same resolution, before Redis is even asked
        assert "is ambiguous" in error_line(cli(verb, "a1b2c3d4")), verb
    assert "no task with id 'ffffffff'" in error_line(cli("cancel", "ffffffff"))


# --- shots ---------------------------------------------------------------------------------------


def test_a_shot_is_named_by_project_and_number_and_a_superseded_one_is_refused(cli, store):
    from storyboard_cli.service import LocalService
    from storyboard_contract.config import load_config

    project = store.create_project("lighthouse", "Once.", "movie")["id"]
    old = plan(store, project, 3)
    new = plan(store, project, 2)
    service = LocalService(load_config())
    new_ids = [s["id"] for s in views.task_shots(store, store.get_task(new))]
    old_ids = [s["id"] for s in views.task_shots(store, store.get_task(old))]

    assert service.resolve_shot(f"{project}/2") == new_ids[1]
    assert service.resolve_shot("lighthouse/1") == service.resolve_shot(str(new_ids[0]))
    assert service.resolve_shot(new_ids[0]) == new_ids[0]  # as the HTTP API passes it
    with pytest.raises(NotFound, match="storyboard has 2 shots; no shot 3"):
        service.resolve_shot("lighthouse/3")
    with pytest.raises(UsageError) as refused:
        service.resolve_shot(str(old_ids[2]))
    assert str(refused.value) == (
        f"shot {old_ids[2]} is shot 3 of an older storyboard of project {project} (task "
        f"{old[:8]}); the one `storyboard show {project}` lists is task {new[:8]}'s: name its "
        f"shots as {project}/NUMBER")
    # The CLI refuses it the same way, before anything is queued.
    assert "of an older storyboard" in error_line(cli("regen-shot", str(old_ids[2])))
    assert store.db["tasks"].count == 2
    # What `show` prints is what regen-shot takes.
    shown = cli("show", "lighthouse").stdout
    assert f"  ({project}/2, id {new_ids[1]}, seed " in shown
    assert f"re-render one: storyboard regen-shot {project}/NUMBER" in shown
    service.close()


def test_the_store_states_the_facts_and_the_service_names_the_command_to_run(store):
    """The data layer knows no command; the service's errors read as they always have."""
    from storyboard_cli.service import LocalService
    from storyboard_contract.config import load_config

    gone = store.create_project("gone", "Once.", "movie")["id"]
    store.remove_project(gone, "kept")
    empty = store.create_project("empty", "Once.", "movie")["id"]
    project = store.create_project("lighthouse", "Once.", "movie")["id"]
    shown = plan(store, project, 2)
    cancelled = plan(store, project, 1, rendered=False)
    assert store.cancel_task(cancelled)
    (cancelled_shot,) = views.task_shots(store, store.get_task(cancelled))
    service = LocalService(load_config())

    def error(call, *args) -> str:
        with pytest.raises(UsageError) as raised:
            call(*args)
        return str(raised.value)

    assert error(store.find_project, "42") == "no project with id or title '42'"
    assert error(service.project, "42") == (
        "no project with id or title '42' (see `storyboard list`)")
    assert error(service.project, str(gone)) == error(store.find_project, str(gone)) == (
        f"no project with id or title '{gone}' (it was removed on "
        f"{store.conn.execute('select removed_at from removed_projects').fetchone()[0][:10]})")
    assert error(store.get_shot, 999) == "no shot with id 999"
    assert error(service.resolve_shot, "999") == (
        "no shot with id 999 (see `storyboard show PROJECT`)")
    assert error(service.resolve_shot, f"{empty}/1") == (
        f"project {empty} has no storyboard yet: storyboard generate {empty}")
    assert error(service.resolve_shot, f"{project}/3") == (
        f"project {project}'s storyboard has 2 shots; no shot 3 (see `storyboard show {project}`)")
    assert error(service.resolve_shot, str(cancelled_shot["id"])) == (
        f"shot {cancelled_shot['id']} is shot 1 of a cancelled storyboard of project {project} "
        f"(task {cancelled[:8]}); the one `storyboard show {project}` lists is task "
        f"{shown[:8]}'s: name its shots as {project}/NUMBER")
    assert error(views.project_view, store, empty, shown) == (
        f"task {shown} is not a storyboard task of project {empty}")
    assert error(service.project, str(empty), shown) == (
        f"task {shown} is not a storyboard task of project {empty} "
        f"(see `storyboard tasks {empty}`)")
    service.close()


@pytest.mark.parametrize(("text", "message"), [
    ("1/0", "no shot number 0"),
    ("/3", "invalid shot id '/3'"),
    ("1/x", "invalid shot id '1/x'"),
    ("1/-2", "invalid shot id '1/-2'"),
])
def test_malformed_shot_names_are_one_line(cli, config, text, message):
    assert message in error_line(cli("regen-shot", text))


def test_a_title_with_slashes_still_names_its_shots():
    assert ids.shot_ref("a/b/12") == ids.ShotRef(project="a/b", number=12)
    # Only the canonical form of an id names a row (issue 23).
    for spelled in (" 7 ", "07", "7\n", "a/b/ 12"):
        with pytest.raises(UsageError):
            ids.shot_ref(spelled)


# --- titles ---------------------------------------------------------------------------------------


def test_a_title_two_projects_share_is_an_error_listing_their_ids_in_every_command(cli, store):
    first = store.create_project("lighthouse", "Once.", "movie")["id"]
    second = store.create_project("lighthouse", "Twice.", "movie")["id"]
    expected = (f"2 projects are titled 'lighthouse': ids {first}, {second}; name one by its "
                "id (or tell them apart: storyboard rename ID TITLE)")
    for args in (["show", "lighthouse"], ["generate", "lighthouse"], ["links", "lighthouse"],
                 ["cast", "lighthouse"], ["tasks", "lighthouse"], ["regen-shot", "lighthouse/1"],
                 ["rename", "lighthouse", "x"], ["rm", "lighthouse", "--yes"]):
        result = cli(*args, "--json")
        assert result.exit_code == 2, args
        assert json.loads(result.stdout) == {"error": expected}, args
    assert json.loads(cli("show", str(second), "--json").stdout)["story_text"] == "Twice."


def test_new_says_when_its_title_is_taken_and_rename_refuses_a_taken_title(cli, store, tmp_path):
    store.create_project("lighthouse", "Once.", "movie")
    (tmp_path / "lighthouse.txt").write_text("Again.\n", encoding="utf-8")
    made = cli("new", "lighthouse.txt")
    assert made.exit_code == 0
    assert "Note: project 1 has this title too: name this one by its id (2)" in made.stderr
    assert "project 1 is titled 'lighthouse' already" in error_line(
        cli("rename", "2", "lighthouse"))
    renamed = cli("rename", "2", "lighthouse (winter)", "--json")
    assert json.loads(renamed.stdout)["title"] == "lighthouse (winter)"
    assert json.loads(cli("show", "lighthouse", "--json").stdout)["id"] == 1
    assert "the title must not be empty" in error_line(cli("rename", "1", "  "))


# --- common options before the command ----------------------------------------------------------


def test_json_config_and_debug_work_before_the_command_as_after_it(cli, config, store, tmp_path,
                                                                   monkeypatch):
    store.create_project("lighthouse", "Once.", "movie")
    assert json.loads(cli("--json", "list").stdout) == json.loads(cli("list", "--json").stdout)
    # --config before the command wins over $STORYBOARD_CONFIG, as after it does.
    other = tmp_path / "other"
    other.mkdir()
    (other / "storyboard.toml").write_text(f'[store]\npath = "{other / "sb.db"}"\n')
    monkeypatch.chdir(other)
    for args in (["--config", str(config), "show", "1"], ["show", "1", "--config", str(config)]):
        monkeypatch.setenv("STORYBOARD_CONFIG", str(other / "storyboard.toml"))
        assert "lighthouse" in cli(*args).stdout, args
    monkeypatch.setenv("STORYBOARD_CONFIG", str(config))
    # An error before the command is JSON too, usage errors included.
    assert json.loads(cli("--json", "show", "42").stdout)["error"].startswith("no project")
    for args in (["show", "1", "--jsn"], ["bogus"]):
        bad = cli("--json", *args)
        assert bad.exit_code == 2 and json.loads(bad.stdout)["error"].startswith("No such"), args
    with pytest.raises(NotFound):  # --debug: the exception itself, not a line
        cli("--debug", "show", "42")
