"""The bucket's key layout (storyboard_contract/keys.py): built from ids only, read back to
find everything a project made and nothing another project or store made."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from storyboard_contract.config import load_config
from storyboard_contract.errors import ConfigError
from storyboard_contract.keys import (
    cast_key,
    export_key,
    identity_key,
    made_by_project,
    probe_key,
    project_prefixes,
    script_key,
    shot_key,
)

WHEN = datetime(2026, 12, 6, 10, 30, tzinfo=timezone.utc)


def test_keys_are_built_from_ids_only():
    assert shot_key("projects", 3, 14, "9b1c-77") == "projects/3/shots/14/9b1c-77.png"
    assert script_key("/a/b/", 3, "t1") == "a/b/3/scripts/t1.json"
    assert script_key("", 3, "t1") == "3/scripts/t1.json"
    for bad in ("../x", "a/b", "", "x" * 65, "t 1", "t\n1"):
        with pytest.raises(ValueError):
            shot_key("projects", 1, 1, bad)
    for bad_id in (-1, "1", True, 1.5):
        with pytest.raises(ValueError):
            shot_key("projects", bad_id, 1, "t")
    with pytest.raises(ValueError):
        script_key("projects/../../etc", 1, "t")


def test_without_a_prefix_no_key_starts_with_a_slash():
    assert export_key("", 3, "board.pdf", WHEN).startswith("3/exports/20261206T103000Z-")
    assert probe_key("", "x.txt") == "_doctor/x.txt"
    assert probe_key("/team/", "x.txt") == "team/_doctor/x.txt"


def test_every_upload_of_an_export_gets_a_folder_of_its_own():
    first, second = (export_key("projects", 3, "board.pdf", WHEN) for _ in range(2))
    assert first != second
    assert first.endswith("/board.pdf") and first.startswith("projects/3/exports/")


def test_a_project_prefix_is_found_from_its_stored_keys_as_well_as_from_the_setting():
    stored = ["other/7/shots/1/t1.png", "projects/7/scripts/t2.json", "projects/70/shots/1/x.png"]
    assert project_prefixes("projects", 7, stored) == ["other/7/", "projects/7/"]
    assert project_prefixes("", 7, []) == ["7/"]


def test_only_what_the_project_made_is_its_own():
    tasks = {"t1", "t2"}
    assert made_by_project("projects/7/shots/1/t1.png", tasks, WHEN)
    assert made_by_project(export_key("projects", 7, "b.pdf", WHEN), tasks, WHEN)
    # Another store's render under the same prefix, and an export older than the project.
    assert not made_by_project("projects/7/shots/1/t9.png", tasks, WHEN)
    assert not made_by_project("projects/7/exports/20200101T000000Z-abc/b.pdf", tasks, WHEN)
    # A reference image or portrait: written since the project was made.
    reference = cast_key("projects", 7, "林", ".jpg")
    assert made_by_project(reference, tasks, WHEN, WHEN + timedelta(hours=1))
    assert not made_by_project(reference, tasks, WHEN, WHEN - timedelta(days=1))
    assert not made_by_project(reference, tasks, WHEN)
    # A character's kept identity features (consistency = "attention"), the same.
    features = identity_key("projects", 7, "林", "ab12")
    assert made_by_project(features, tasks, WHEN, WHEN + timedelta(hours=1))
    assert not made_by_project(features, tasks, WHEN, WHEN - timedelta(days=1))
    with pytest.raises(ValueError, match="png or .jpg"):
        cast_key("projects", 7, "林", ".gif")


def test_a_prefix_that_could_escape_is_a_configuration_error(tmp_path):
    (tmp_path / "storyboard.toml").write_text('[s3]\nprefix = "projects/../../etc"\n')
    with pytest.raises(ConfigError, match=r"s3.prefix .*letters, digits"):
        load_config(tmp_path / "storyboard.toml", environ={})
