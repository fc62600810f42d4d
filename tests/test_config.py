"""Configuration: file + .env + environment, one typed object, clear errors naming file and key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from storyboard_contract.config import PLANNER_PRESETS, REDACTED, load_config
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


MODELS = """
[images]
model = "models/v1-5-pruned-emaonly.safetensors"
steps = 25
scheduler = "dpmpp_2m_karras"

[images.models.sdxl]
model = "models/sd_xl_base_1.0.safetensors"
width = 1024
height = 1024
steps = 30
negative_prompt = "text, watermark"

[images.models.hunyuan]
model = "Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers"
guidance_scale = 5.0
"""


def test_several_models_are_read_from_tables_the_default_first(tmp_path):
    images = load_config(write(tmp_path, MODELS), environ={}).images
    assert list(images.model_table()) == ["default", "sdxl", "hunyuan"]
    assert images.default_model == "default"
    assert images.model_table()["default"].model == "models/v1-5-pruned-emaonly.safetensors"
    # A table's defaults, and [images]' where it sets none.
    assert images.generation("sdxl") == {
        "width": 1024, "height": 1024, "steps": 30, "guidance_scale": 7.0,
        "scheduler": "dpmpp_2m_karras", "negative_prompt": "text, watermark"}
    assert images.generation(None)["steps"] == 25
    assert images.frame_size("16:9", "sdxl") == (1368, 768)
    assert images.frame_size("16:9") == (680, 384)


def test_without_images_model_the_first_table_is_the_default(tmp_path):
    text = MODELS.replace('model = "models/v1-5-pruned-emaonly.safetensors"\n', "", 1)
    assert load_config(write(tmp_path, text), environ={}).images.default_model == "sdxl"


@pytest.mark.parametrize(("text", "message"), [
    ("[images.models.x]\nsteps = 3\n", "images.models.x.model is not set"),
    ('[images.models."bad name"]\nmodel = "m"\n', "[images.models.bad name]: a model's name"),
    ('[images]\nmodel = "a"\n[images.models.default]\nmodel = "b"\n',
     "[images.models.default] and images.model both name"),
    ('[images.models.x]\nmodel = "m"\nscheduler = "dpm_fast"\n',
     "images.models.x.scheduler = 'dpm_fast' is not one of default, "),
    ('[images.models.x]\nmodel = "m"\nsampler = "euler"\n', "unknown key images.models.x.sampler"),
    ('[images.models.x]\nmodel = "m"\nwidth = 1001\n', "images.models.x.width must be greater"),
    ('[images]\nmax_loaded = 0\n', "images.max_loaded must be greater than 0"),
    ('[planner]\nprompt_language = "fr"\n', "planner.prompt_language = 'fr' is not one of"),
])
def test_bad_model_tables_name_the_table_and_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, text), environ={})


def test_the_models_show_in_storyboard_config_as_plain_data(tmp_path):
    models = load_config(write(tmp_path, MODELS), environ={}).redacted()["images"]["models"]
    assert models["sdxl"]["width"] == 1024 and models["hunyuan"]["steps"] is None


@pytest.mark.parametrize(("preset", "base_url", "model"), [
    ("deepseek", "https://api.deepseek.com/v1", "deepseek-v4-flash"),
    ("qwen", "https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen-plus"),
    ("ark", "https://ark.cn-beijing.volces.com/api/v3", "doubao-1-5-pro-32k-250115"),
    ("openai", "https://api.openai.com/v1", "gpt-4o-mini"),
    ("ollama", "http://127.0.0.1:11434/v1", "llama3.1"),
    ("vllm", "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct"),
])
def test_a_planner_preset_fills_the_backend_address_and_model(tmp_path, preset, base_url, model):
    cfg = load_config(write(tmp_path, f'[planner]\npreset = "{preset}"\n'), environ={})
    assert (cfg.planner.backend, cfg.planner.base_url, cfg.planner.model) == (
        "openai", base_url, model)


def test_what_the_file_or_environment_sets_wins_over_the_preset(tmp_path):
    path = write(tmp_path, '[planner]\npreset = "ark"\nmodel = "ep-20240607092512-c5wnh"\n')
    cfg = load_config(path, environ={"STORYBOARD_PLANNER_BASE_URL": "https://gw.example/v1"})
    assert (cfg.planner.backend, cfg.planner.base_url, cfg.planner.model) == (
        "openai", "https://gw.example/v1", "ep-20240607092512-c5wnh")


def test_an_unknown_planner_preset_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="planner.preset = 'deepsek' is not one of deepseek, "
                                          "qwen, ark, openai, ollama, vllm"):
        load_config(write(tmp_path, '[planner]\npreset = "deepsek"\n'), environ={})


def test_the_shipped_storyboard_toml_shows_every_preset():
    text = (REPO / "storyboard.toml").read_text(encoding="utf-8")
    for name, preset in PLANNER_PRESETS.items():
        assert f'preset = "{name}"' in text and preset["base_url"] in text \
            and preset["model"] in text
