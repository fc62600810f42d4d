"""Models that read Chinese, through the same paths as any other: a tiny random-weight
HunyuanDiT (bilingual BERT + multilingual T5) and a tiny Kolors (ChatGLM3) as diffusers
folders, beside the tiny SD 1.x checkpoint on one daemon. A Chinese prompt goes to them
without a warning; the same prompt to the English-only model (CLIP) comes back with one,
saying what to do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_daemon import DaemonHandle, start_daemon

PROMPT = "清晨，老人推开木门，院子里站着一个陌生的孩子"


@pytest.fixture(scope="module")
def tiny_hunyuan_dir(tmp_path_factory) -> Path:
    from gpu_daemon.testing import build_tiny_hunyuan_pipeline

    return build_tiny_hunyuan_pipeline(tmp_path_factory.mktemp("tiny-hunyuan") / "model")


@pytest.fixture(scope="module")
def tiny_kolors_dir(tmp_path_factory) -> Path:
    from gpu_daemon.testing import build_tiny_kolors_pipeline

    return build_tiny_kolors_pipeline(tmp_path_factory.mktemp("tiny-kolors") / "model")


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory, s3_server, tiny_model_dir, tiny_checkpoint,
              tiny_hunyuan_dir, tiny_kolors_dir) -> Iterator[DaemonHandle]:
    handle = start_daemon(
        tmp_path_factory.mktemp("bilingual"), s3_server, "auto", tiny_checkpoint,
        images={"model_config": str(tiny_model_dir), "width": 64, "height": 64, "steps": 2,
                "max_loaded": 2},
        # HunyuanDiT renders its own sizes only: its frames are 1024 x 1024 pixels.
        sections={"images.models.hunyuan": {"model": str(tiny_hunyuan_dir), "width": 1024,
                                            "height": 1024, "steps": 1},
                  "images.models.kolors": {"model": str(tiny_kolors_dir)}},
        timeout=120)
    yield handle
    handle.stop()


def shot(model: str | None, **more: Any) -> dict[str, Any]:
    return {"project_id": 1, "shot_id": 1, "task_id": str(uuid.uuid4()), "seed": 3,
            "prompt": PROMPT, "style": "水彩画风格", "model": model, **more}


def test_the_daemon_knows_which_model_reads_chinese(bilingual):
    models = {m["name"]: m for m in bilingual.status()["models"]}
    assert (models["hunyuan"]["architecture"], models["hunyuan"]["text_encoder"],
            models["hunyuan"]["reads_chinese"]) == (
        "HunyuanDiT", "bilingual CLIP (BERT) + mT5", True)
    assert (models["kolors"]["architecture"], models["kolors"]["text_encoder"],
            models["kolors"]["reads_chinese"]) == ("Kolors", "ChatGLM3", True)
    assert (models["default"]["text_encoder"], models["default"]["reads_chinese"]) == (
        "CLIP", False)


@pytest.mark.parametrize(("model", "size"), [("hunyuan", (1024, 1024)), ("kolors", (64, 64))])
def test_a_chinese_prompt_renders_on_a_chinese_reading_model_without_a_warning(
        bilingual, model, size):
    with bilingual.client(timeout=300) as c:
        answer = c.post("/v1/render", json=shot(model))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["warnings"] == []
    assert result["provenance"]["model_name"] == model
    assert (result["width"], result["height"]) == size
    # The style's Chinese name is the watercolor preset, in front of the Chinese content.
    assert result["prompt"].startswith("watercolor painting, 清晨，老人推开木门")


def test_the_same_prompt_to_an_english_only_model_warns_with_the_fix(bilingual):
    with bilingual.client(timeout=120) as c:
        result = c.post("/v1/render", json=shot(None)).json()
    # The style's Chinese name is the watercolor preset.
    assert result["prompt"].startswith("watercolor painting, ")
    (warning,) = result["warnings"]
    assert "model 'default' (SD 1.x), whose text encoder (CLIP) reads English only" in warning
    # The daemon names its own Chinese-reading model in the fix.
    assert warning.endswith("or render with model 'hunyuan' of this daemon (storyboard "
                            "settings PROJECT --model NAME)")


def test_a_plan_for_an_english_only_model_warns_once(bilingual):
    story = "清晨，小镇还在沉睡。老陈推开木门，看见院子里站着一个陌生的孩子。"
    body = {"project_id": 1, "task_id": str(uuid.uuid4()), "story": story,
            "upload_script": False}
    with bilingual.client(timeout=120) as c:
        plain = c.post("/v1/plan", json=body).json()
        for_hunyuan = c.post("/v1/plan", json={**body, "render": {"model": "hunyuan"}}).json()
    assert len(plain["warnings"]) == 1 and "reads English only" in plain["warnings"][0]
    assert for_hunyuan["warnings"] == []
