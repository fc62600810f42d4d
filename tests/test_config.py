"""Configuration: file + .env + environment, one typed object, clear errors naming file and key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storyboard_contract.config import REDACTED, load_config
from storyboard_contract.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "storyboard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_storyboard_toml_loads_and_matches_the_defaults():
    cfg = load_config(REPO / "storyboard.toml", environ={})
    assert cfg.redis.url == "redis://127.0.0.1:6379/0"
    assert cfg.planner.backend == "rules"
    assert cfg.store_path == REPO / "storyboard.db"


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[redis]\nurl = "redis://file:6379/0"\n[images]\nsteps = 10\n')
    cfg = load_config(
        path,
        environ={"STORYBOARD_REDIS_URL": "redis://env:6379/1", "STORYBOARD_IMAGES_STEPS": "4"},
    )
    assert cfg.redis.url == "redis://env:6379/1"
    assert cfg.images.steps == 4


def test_original_system_s3_variable_names_are_accepted(tmp_path):
    cfg = load_config(
        write(tmp_path, ""),
        environ={
            "ACCESS_KEY": "ak", "SECRET_KEY": "sk",
            "ENDPOINT": "tos-s3-cn-beijing.volces.com", "TOS_BUCKET": "boards",
        },
    )
    assert (cfg.s3.access_key, cfg.s3.secret_key, cfg.s3.bucket) == ("ak", "sk", "boards")
    assert cfg.s3.endpoint == "https://tos-s3-cn-beijing.volces.com"


def test_aws_names_work_and_storyboard_names_win(tmp_path):
    cfg = load_config(
        write(tmp_path, ""),
        environ={"AWS_ACCESS_KEY_ID": "aws", "STORYBOARD_S3_ACCESS_KEY": "mine"},
    )
    assert cfg.s3.access_key == "mine"


def test_dotenv_beside_the_file_is_read_but_the_real_environment_wins(tmp_path, monkeypatch):
    # load_dotenv writes into os.environ: give it a copy so nothing leaks into later tests.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    path = write(tmp_path, "")
    (tmp_path / ".env").write_text("STORYBOARD_DAEMON_TOKEN=from-dotenv\nSECRET_KEY=dot\n")
    monkeypatch.setenv("SECRET_KEY", "real")
    monkeypatch.delenv("STORYBOARD_DAEMON_TOKEN", raising=False)
    cfg = load_config(path)
    assert cfg.daemon.token == "from-dotenv"
    assert cfg.s3.secret_key == "real"


def test_secrets_are_redacted(tmp_path):
    cfg = load_config(write(tmp_path, ""), environ={"STORYBOARD_DAEMON_TOKEN": "t0ps3cret"})
    shown = cfg.redacted()
    assert shown["daemon"]["token"] == REDACTED
    assert "t0ps3cret" not in repr(shown)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[redis\nurl = 1", "not valid TOML"),
        ("[rediss]\nurl = 'x'\n", "unknown section [rediss]"),
        ("[redis]\nuri = 'x'\n", "unknown key redis.uri"),
        ("[images]\nsteps = 'many'\n", "images.steps: expected int"),
        ("[images]\nwidth = 500\n", "images.width must be a multiple of 8"),
        ("[images]\naspect = '3:2'\n", "images.aspect: unknown aspect '3:2'; use one of 2.39:1"),
        ("[images]\nsize_multiple = 12\n", "images.size_multiple must be 8, 16, ... or 256"),
        ("[s3]\naddressing_style = 'sideways'\n", "s3.addressing_style = 'sideways' is not one of"),
        ("[daemon]\ntoken = 'abc'\n", "daemon.token is a secret"),
        ("[queue]\njob_timeout = 0\n", "queue.job_timeout must be greater than 0"),
        ("[images]\nsimulated_image_ms = -1\n", "images.simulated_image_ms must not be negative"),
        ("[images]\nbackend = 'gpu'\n",
         "images.backend = 'gpu' is not one of auto, diffusers, simulated, sketch"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"\$STORYBOARD_IMAGES_STEPS: cannot read 'x'"):
        load_config(write(tmp_path, ""), environ={"STORYBOARD_IMAGES_STEPS": "x"})


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = write(tmp_path, '[store]\npath = "data/sb.db"\n')
    assert load_config(path, environ={}).store_path == tmp_path / "data" / "sb.db"


def test_config_says_where_each_value_came_from(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from storyboard_cli.cli import cli

    monkeypatch.setattr(os, "environ", dict(os.environ))
    for name in ("ENDPOINT", "STORYBOARD_S3_ENDPOINT", "AWS_ENDPOINT_URL", "STORYBOARD_REDIS_URL",
                 "STORYBOARD_IMAGES_STEPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, '[s3]\nendpoint = "https://tos-s3-cn-beijing.volces.com"\n'
                           '[redis]\nurl = "redis://file:6379/0"\n')
    # A .env left by an earlier `storyboard up` still points at the local SeaweedFS.
    (tmp_path / ".env").write_text("ENDPOINT=http://127.0.0.1:8333\n")
    monkeypatch.setenv("STORYBOARD_IMAGES_STEPS", "4")
    clean = dict(os.environ)

    text = CliRunner().invoke(cli, ["config", "--config", str(path)]).stdout
    assert f'endpoint = "http://127.0.0.1:8333"  # .env $ENDPOINT ({tmp_path / ".env"})' in text
    monkeypatch.setattr(os, "environ", clean)  # loading copied .env into the environment
    result = CliRunner().invoke(cli, ["config", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = __import__("json").loads(result.stdout)
    assert data["s3"]["endpoint"] == "http://127.0.0.1:8333"
    sources = data["sources"]
    assert sources["s3"]["endpoint"] == f".env $ENDPOINT ({tmp_path / '.env'})"
    assert sources["redis"]["url"] == "file"
    assert sources["images"]["steps"] == "environment $STORYBOARD_IMAGES_STEPS"
    assert sources["images"]["width"] == "default"



def test_lists_of_names_are_read_from_the_file_and_the_environment(tmp_path):
    path = write(tmp_path, '[frp]\nboxes = ["gpu1", "gpu2"]\n')
    assert load_config(path, environ={}).frp.boxes == ["gpu1", "gpu2"]
    env = {"STORYBOARD_FRP_BOXES": "a, b,c"}
    assert load_config(path, environ=env).frp.boxes == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="expected a list of strings"):
        load_config(write(tmp_path, "[frp]\nboxes = [1]\n"), environ={})
