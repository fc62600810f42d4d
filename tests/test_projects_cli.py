"""Project commands as a user runs them; bad input gets one line, exit 2, and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storyboard_cli.store import Store

CHINESE = "夜里，灯塔的光扫过海面。\n“你听见了吗？”老人问。\n女孩点点头。"


def store_of(config_file: Path) -> Store:
    return Store(config_file.parent / "storyboard.db")


def test_new_creates_a_project_and_show_returns_it(cli, tmp_path):
    (tmp_path / "lighthouse.txt").write_text("The keeper climbed the stairs.\n", encoding="utf-8")
    result = cli("new", "lighthouse.txt", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["title"] == "lighthouse"
    shown = json.loads(cli("show", str(created["id"]), "--json").stdout)
    assert shown["story_text"] == "The keeper climbed the stairs.\n"
    assert shown["task"] is None and shown["shots"] == []
    assert json.loads(cli("show", "lighthouse", "--json").stdout)["id"] == created["id"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le",
                                      "utf-16-be", "gb18030"])
def test_chinese_story_round_trips_unchanged_in_every_supported_encoding(
    cli, tmp_path, encoding
):
    (tmp_path / "story.txt").write_bytes(CHINESE.encode(encoding))
    result = cli("new", "story.txt", "--title", "灯塔", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(cli("show", "灯塔", "--json").stdout)
    assert shown["story_text"] == CHINESE


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("story", [
    "夜里灯塔的光扫过海面老人问你听见了吗女孩点点头",
    "一个老人站在灯塔下。他说：一切都好。",  # 一 is U+4E00: a zero byte in either order
])
def test_chinese_utf16_without_a_bom_or_any_ascii_character_is_detected(cli, tmp_path,
                                                                         encoding, story):
    (tmp_path / "story.txt").write_bytes(story.encode(encoding))
    result = cli("new", "story.txt", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["story_text"] == story


@pytest.mark.parametrize("text", [
    "Müller trägt Körbe über die Brücke; Jürgen zählt die Äpfel.\n",  # GB18030 would take it
    "Le garçon était très fatigué après la fête.\n",  # GB18030 would not
])
def test_latin1_text_is_refused_with_pass_encoding_and_accepted_with_it(cli, config_file,
                                                                        tmp_path, text):
    (tmp_path / "s.txt").write_bytes(text.encode("latin-1"))
    result = cli("new", "s.txt")
    assert result.exit_code == 2
    assert "cannot detect the text encoding" in result.stderr
    assert "pass --encoding (latin-1 or cp1252" in result.stderr
    assert store_of(config_file).db["projects"].count == 0
    forced = cli("new", "s.txt", "--encoding", "latin-1", "--json")
    assert json.loads(forced.stdout)["story_text"] == text


def test_encoding_can_be_forced(cli, tmp_path):
    (tmp_path / "s.txt").write_bytes(CHINESE.encode("gb18030"))
    assert cli("new", "s.txt", "--encoding", "utf-8").exit_code == 2
    assert cli("new", "s.txt", "--encoding", "gb18030").exit_code == 0


def test_stdin_story(cli):
    result = cli("new", "-", "--title", "piped", "--json", input="A story from a pipe.")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "piped"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\t \n", "is empty"),
        ("\u3000\n".encode("utf-16"), "only whitespace"),
        (bytes(range(256)) * 4, "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "binary"),
    ],
)
def test_bad_stories_give_one_line_exit_2_and_write_nothing(cli, config_file, tmp_path,
                                                              content, message):
    (tmp_path / "bad.txt").write_bytes(content)
    result = cli("new", "bad.txt")
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert store_of(config_file).db["projects"].count == 0


def test_story_over_the_size_limit_is_refused(cli, config_file, tmp_path):
    config_file.write_text('[store]\npath = "storyboard.db"\n[limits]\nmax_story_bytes = 100\n')
    (tmp_path / "long.txt").write_text("word " * 50)
    result = cli("new", "long.txt")
    assert result.exit_code == 2
    assert "the limit is 100" in result.stderr


def test_missing_file_and_unknown_project_exit_2(cli):
    assert "story file not found" in cli("new", "nope.txt").stderr
    result = cli("show", "42", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": "no project with id or title '42' (see `storyboard list`)"
    }


def test_a_project_has_the_configured_aspect_unless_new_chooses_one(cli, config_file,
                                                                    tmp_path):
    (tmp_path / "a.txt").write_text("One.")
    assert json.loads(cli("new", "a.txt", "--json").stdout)["aspect"] == "16:9"
    wide = json.loads(cli("new", "a.txt", "--aspect", "2.39", "--json").stdout)
    assert (wide["aspect"], wide["width"], wide["height"]) == ("2.39:1", 792, 328)
    config_file.write_text('[store]\npath = "storyboard.db"\n[images]\naspect = "9:16"\n'
                           "width = 256\nheight = 256\n")
    tall = json.loads(cli("new", "a.txt", "--json").stdout)
    assert (tall["aspect"], tall["width"], tall["height"]) == ("9:16", 192, 344)
    assert "9:16 frames of 192×344" in cli("show", str(tall["id"])).stdout
    assert [r["aspect"] for r in json.loads(cli("list", "--json").stdout)] == [
        "16:9", "2.39:1", "9:16"]

    refused = cli("new", "a.txt", "--aspect", "3:2")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        "Error: unknown aspect '3:2'; use one of 2.39:1, 2:1, 1.85:1, 16:9, 4:3, 1:1, 9:16")
    assert store_of(config_file).db["projects"].count == 3


def test_cast_lists_and_edits_the_characters_all_or_nothing(cli, config_file, tmp_path):
    (tmp_path / "a.txt").write_text("Lin met Tom.")
    cli("new", "a.txt")
    assert json.loads(cli("cast", "1", "--json").stdout) == []
    assert "No characters yet" in cli("cast", "1").stderr
    set_two = cli("cast", "a", "--set", "Lin=young woman,  red wool scarf", "--set",
                  "Tom = elderly man", "--json")
    assert set_two.exit_code == 0, set_two.output
    plain = {"aliases": [], "reference_key": None, "lora": None, "trigger": None, "shots": []}
    assert json.loads(set_two.stdout) == [
        {"name": "Lin", "description": "young woman, red wool scarf", "source": "user", **plain},
        {"name": "Tom", "description": "elderly man", "source": "user", **plain}]

    for args, message in [
        (("--set", "Lin"), "write it as \"NAME=DESCRIPTION\""),
        (("--set", "Lin="), "the description of Lin is empty (to drop Lin, use --remove)"),
        (("--set", "Lin=" + "very long coat " * 12), "at most 20 fit beside the shot"),
        (("--set", "=girl"), "character name ''"),
        (("--set", "Ann=girl", "--remove", "Nobody"), "project 1 has no character 'Nobody'"),
        (("--set", "tom=man", "--remove", "Tom"), "Tom is both described and removed"),
    ]:
        refused = cli("cast", "1", *args)
        assert refused.exit_code == 2, args
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert [c["name"] for c in store_of(config_file).cast(1)] == ["Lin", "Tom"]

    removed = json.loads(cli("cast", "1", "--remove", "tom", "--json").stdout)
    assert [c["name"] for c in removed] == ["Lin"]
    table = cli("cast", "1").stdout
    assert "young woman, red wool scarf" in table and "you" in table


def test_lookups_in_a_fresh_directory_leave_no_store_behind(cli, tmp_path):
    assert cli("show", "1").exit_code == 2
    assert cli("cast", "1").exit_code == 2
    assert cli("status", "no-such-task").exit_code == 2
    assert cli("links", "1").exit_code == 2
    assert cli("list", "--json").stdout.strip() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["storyboard.toml"]


def test_malformed_config_is_one_line_exit_2(cli, config_file):
    config_file.write_text("[store\n")
    result = cli("list")
    assert result.exit_code == 2
    assert str(config_file) in result.stderr and "not valid TOML" in result.stderr


def test_list_shows_projects(cli, tmp_path):
    (tmp_path / "a.txt").write_text("One.")
    cli("new", "a.txt")
    rows = json.loads(cli("list", "--json").stdout)
    assert [r["title"] for r in rows] == ["a"]
    assert rows[0]["shots"] == 0


def test_init_writes_starter_files_once(cli, tmp_path):
    target = tmp_path / "fresh"
    first = json.loads(cli("init", str(target), "--json").stdout)
    assert sorted(Path(p).name for p in first["written"]) == [".env.example", "storyboard.toml"]
    (target / "storyboard.toml").write_text("# mine\n")
    second = json.loads(cli("init", str(target), "--json").stdout)
    assert second["written"] == []
    assert (target / "storyboard.toml").read_text() == "# mine\n"


def test_config_prints_the_effective_settings_without_secrets(cli, monkeypatch):
    monkeypatch.setenv("STORYBOARD_DAEMON_TOKEN", "very-secret-token")
    result = cli("config", "--json")
    assert "very-secret-token" not in result.stdout
    assert json.loads(result.stdout)["daemon"]["token"] == "***"


def test_every_command_help_shows_an_example_on_one_line(cli):
    import click

    from storyboard_cli.cli import cli as group

    def leaves(cmd: click.Command, path: tuple[str, ...]):
        if isinstance(cmd, click.Group):
            # A group that takes a project first (`shots PROJECT split`) is given one.
            taken = tuple("1" for p in cmd.params if isinstance(p, click.Argument))
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                yield from leaves(cmd.get_command(ctx, name), (*path, *taken, name))
        else:
            yield path, cmd

    found = list(leaves(group, ()))
    # export, rename, rm, settings, tasks, cancel, serve, token; frp install, ...; shot, ...
    assert len(found) == 43
    for path, cmd in found:
        example = next(ln.strip() for ln in cmd.help.splitlines() if "Example:" in ln)
        result = cli(*path, "--help")
        assert result.exit_code == 0
        # Rendered unwrapped, however long (click's \b paragraph marker).
        assert example in [ln.strip() for ln in result.stdout.splitlines()], path


def test_usage_errors_exit_2_and_help_and_version_exit_0(cli):
    from storyboard_cli import __version__

    assert cli().exit_code == 2  # no command: the help, as a usage error
    for args in (["bogus"], ["new"], ["regen-shot", "x"], ["status", "t", "--timeout", "-1"],
                 ["frp", "render"]):
        result = cli(*args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("Error: ") and result.stdout == "", args
    for args in (["-h"], ["--help"], ["new", "-h"], ["frp", "render", "--help"]):
        assert cli(*args).exit_code == 0, args
    version = cli("--version")
    assert version.exit_code == 0 and version.stdout == f"{__version__}\n"


def test_a_misspelt_command_is_refused_with_the_command_it_resembles():
    # In a fresh process, as a user types it: no command module imported yet.
    for typo, meant in (("lsit", "list"), ("genrate", "generate"), ("bucket craete", "create")):
        result = subprocess.run([sys.executable, "-m", "storyboard_cli.cli", *typo.split()],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, typo
        assert result.stderr.startswith(f"Error: No such command '{typo.split()[-1]}'.")
        suggestion = result.stderr.partition("Did you mean")[2]  # one, or one of several
        assert f"'{meant}'" in suggestion, result.stderr
        assert result.stdout == ""


def test_real_subprocess_new_then_show(config_file, tmp_path):
    story = tmp_path / "s.txt"
    story.write_bytes(CHINESE.encode("gb18030"))
    env = {**os.environ, "STORYBOARD_CONFIG": str(config_file), "NO_COLOR": "1"}
    exe = [sys.executable, "-m", "storyboard_cli.cli"]
    new = subprocess.run([*exe, "new", str(story), "--json"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert new.returncode == 0, new.stderr
    show = subprocess.run([*exe, "show", "1", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert json.loads(show.stdout)["story_text"] == CHINESE
    bad = subprocess.run([*exe, "show", "99"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1


def test_cli_start_up_imports_nothing_heavy():
    code = (
        "import sys, storyboard_cli.cli;"
        "heavy = {'torch', 'diffusers', 'transformers', 'fastapi', 'uvicorn', 'boto3', 'botocore',"
        " 'typer', 'rich', 'redis', 'httpx', 'sqlite_utils', 'pydantic'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_help_lists_every_command_without_importing_the_command_modules():
    code = (
        "import sys\n"
        "from storyboard_cli.cli import main\n"
        "sys.argv = ['storyboard', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(sorted(m for m in sys.modules if m.startswith('storyboard_cli.commands.')),"
        " file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stderr.strip() == "['storyboard_cli.commands.common']", out.stderr
    listed = out.stdout.partition("Commands:\n")[2].splitlines()
    from storyboard_cli.cli import COMMANDS

    assert [line.split()[0] for line in listed] == list(COMMANDS)
    assert "Create a project from a story in prose" in out.stdout


def test_the_help_table_holds_each_command_s_module_and_its_own_first_sentence():
    """cli.COMMANDS, which --help lists, against the commands each module registers."""
    import importlib

    import click

    from storyboard_cli.cli import COMMANDS

    found: dict[str, tuple[str, str]] = {}
    for module in dict.fromkeys(module for module, _ in COMMANDS.values()):
        group = click.Group()
        importlib.import_module(f"storyboard_cli.commands.{module}").register(group)
        for name, command in group.commands.items():
            # The whole first sentence: click shortens it to the width as it shortens this.
            found[name] = (module, command.get_short_help_str(limit=10**6))
    assert found == COMMANDS


def loaded_by(config_file: Path, *args: str) -> tuple[str, set[str]]:
    """(stdout, top-level modules loaded) of one CLI command run in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from storyboard_cli.cli import cli\n"
        f"try:\n    cli({list(args)!r})\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "STORYBOARD_CONFIG": str(config_file)},
                         cwd=config_file.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout, set(json.loads(out.stderr.splitlines()[-1]))


def test_show_json_of_a_migrated_store_imports_only_what_it_needs(cli, config_file, tmp_path):
    (tmp_path / "s.txt").write_text("One.")
    assert cli("new", "s.txt").exit_code == 0
    shown, loaded = loaded_by(config_file, "show", "1", "--json")
    assert json.loads(shown)["title"] == "s"
    # pydantic: the wire schemas' models cost `show` of 10,000 shots a tenth of its time.
    assert not loaded & {"sqlite_utils", "rich", "dotenv", "redis", "httpx", "typer",
                         "pydantic"}


def test_new_of_a_prose_story_imports_no_screenplay_model(cli, config_file, tmp_path):
    """Telling prose from a screenplay takes text checks; the readers and their pydantic
    models (~130 ms) load for a screenplay only."""
    (tmp_path / "s.txt").write_text("INT. is no heading here. The keeper climbed.\n")
    assert cli("new", "s.txt").exit_code == 0  # the store migrated: sqlite_utils' work
    created, loaded = loaded_by(config_file, "new", "s.txt", "--json")
    assert json.loads(created)["format"] == "prose"
    assert loaded & {"pydantic", "sqlite_utils", "rich", "redis", "httpx"} == set()
