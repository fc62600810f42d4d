"""The OpenAI-compatible planner against a local server that speaks /v1/chat/completions."""

from __future__ import annotations

import json

import pytest
from fixtures_llm import Answer, LLMServer

from gpu_daemon.planner import PlannerError, make_planner
from gpu_daemon.planner.openai import OpenAIPlanner
from gpu_daemon.planner.rules import RulesPlanner
from storyboard_cli.stack import processes
from storyboard_contract.config import Config
from storyboard_contract.tokens import CLIP_BUDGET, DESCRIPTION_TOKENS, estimate_tokens

KEY = "sk-test-0123456789abcdef"
STORY = "The storm broke over the bay. Mara climbed the lighthouse. \u201cHurry!\u201d she cried."

MARA = "young woman, short red hair, yellow raincoat"
SHOTS = {
    "characters": [{"name": "Mara", "description": MARA}],
    "shots": [
        {"description": "The storm broke over the bay.", "camera": "Wide Shot",
         "action": "Waves break over the harbour wall.",
         "prompt": "stormy bay at night, huge waves, lighthouse on the rocks", "duration": 4},
        {"description": "Mara climbed the lighthouse.", "camera": "MCU",
         "action": "Mara climbs the spiral stairs.", "characters": ["Mara"],
         "prompt": "a woman climbing a spiral staircase inside a lighthouse",
         "index": 7, "negative_prompt": "ignored", "dialogue": []},
        {"description": "\u201cHurry!\u201d she cried.", "camera": "close up",
         "prompt": "close-up of a frightened woman shouting", "characters": ["Mara"],
         "dialogue": [{"speaker": "Mara", "line": "Hurry!"}], "duration": 2.5},
    ],
}


def planner_for(server: LLMServer, api_key: str = KEY, timeout: float = 10.0) -> OpenAIPlanner:
    cfg = Config()
    cfg.planner.backend = "openai"
    cfg.planner.base_url = server.base_url
    cfg.planner.model = "story-model"
    cfg.planner.api_key = api_key
    cfg.planner.timeout = timeout
    planner = make_planner(cfg)
    assert isinstance(planner, OpenAIPlanner)
    return planner


def test_the_rules_planner_is_the_default() -> None:
    planner = make_planner(Config())
    assert isinstance(planner, RulesPlanner) and planner.name == "rules"


def test_a_valid_answer_becomes_validated_shots(llm_server: LLMServer) -> None:
    llm_server.answer("```json\n" + json.dumps(SHOTS) + "\n```")
    plan = planner_for(llm_server).plan(STORY, "noir", 10)
    shots = plan.shots

    assert [(c.name, c.description) for c in plan.characters] == [("Mara", MARA)]
    assert [s.index for s in shots] == [0, 1, 2]
    assert [s.number for s in shots] == [1, 2, 3]
    assert [s.camera for s in shots] == ["wide", "medium close-up", "close-up"]
    assert [s.characters for s in shots] == [[], ["Mara"], ["Mara"]]
    assert [(d.speaker, d.line) for d in shots[2].dialogue] == [("Mara", "Hurry!")]
    assert shots[0].dialogue == [] and shots[1].dialogue == []
    assert shots[1].action == "Mara climbs the spiral stairs." and shots[2].action == ""
    assert shots[0].duration == 4.0 and shots[1].duration == 3.0
    assert shots[1].negative_prompt == ""  # the style's negative is added at render time
    assert shots[1].prompt == SHOTS["shots"][1]["prompt"]

    (request,) = llm_server.requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "story-model"
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system"
    for field in ('"shots"', '"characters"', '"action"', '"dialogue"', '"speaker"'):
        assert field in system["content"]
    assert user["role"] == "user"
    assert STORY in user["content"] and "noir" in user["content"] and "10 shots" in user["content"]


def test_no_key_sends_no_authorization_header(llm_server: LLMServer) -> None:
    llm_server.answer(json.dumps(SHOTS))
    planner_for(llm_server, api_key="").plan(STORY, "movie", 10)
    assert "Authorization" not in llm_server.requests[0].headers


def test_slips_are_normalised_and_the_cast_covers_every_shot(llm_server: LLMServer) -> None:
    answer = {
        "characters": [{"name": " Mara ", "description": "woman " + "with a very long coat " * 9},
                       {"name": "Mara", "description": "listed twice"}],
        "shots": [
            {"description": "Tom shouts.", "prompt": "an old man shouting", "camera": "cu",
             "characters": ["Tom", {"name": "Mara"}, "Tom"], "dialogue": "Hurry up!"},
            {"description": "Silence.", "prompt": "an empty room", "dialogue": None},
        ],
    }
    llm_server.answer(json.dumps(answer))
    plan = planner_for(llm_server).plan(STORY, "movie", 10)
    # Tom was seen but not listed: he joins the cast, not yet described.
    assert [c.name for c in plan.characters] == ["Mara", "Tom"]
    mara, tom = plan.characters
    assert estimate_tokens(mara.description) <= DESCRIPTION_TOKENS
    assert mara.description.startswith("woman with a very long coat") and tom.description == ""
    first, second = plan.shots
    assert first.characters == ["Tom", "Mara"]
    assert [(d.speaker, d.line) for d in first.dialogue] == [(None, "Hurry up!")]
    assert second.dialogue == [] and second.characters == []


def test_shots_are_capped_and_long_prompts_fit_clip(llm_server: LLMServer) -> None:
    many = {"shots": [
        {"description": f"Wave {n} hits the rocks.", "camera": "medium",
         "prompt": f"wave {n} " + "crashing against black rocks under lightning " * 30}
        for n in range(8)
    ]}
    llm_server.answer(json.dumps(many))
    shots = planner_for(llm_server).plan(STORY, "movie", 3).shots
    assert [s.description for s in shots] == [f"Wave {n} hits the rocks." for n in range(3)]
    for n, shot in enumerate(shots):
        assert shot.prompt.startswith(f"wave {n} crashing")
        assert estimate_tokens(shot.prompt) <= CLIP_BUDGET


def test_an_invalid_answer_is_retried_once_with_the_reason(llm_server: LLMServer) -> None:
    llm_server.answer("Sure! Here is your storyboard: {shots: [", json.dumps(SHOTS))
    plan = planner_for(llm_server).plan(STORY, "movie", 10)
    assert len(plan.shots) == 3

    first, second = llm_server.requests
    messages = second.body["messages"]
    assert messages[:2] == first.body["messages"]
    assert messages[2] == {"role": "assistant",
                           "content": "Sure! Here is your storyboard: {shots: ["}
    assert messages[3]["role"] == "user" and "not JSON" in messages[3]["content"]


def test_two_invalid_answers_are_a_clear_error(llm_server: LLMServer) -> None:
    bad_camera = {"shots": [{"description": "A boat.", "prompt": "a boat", "camera": "drone"}]}
    llm_server.answer(json.dumps(bad_camera), json.dumps({"scenes": []}))
    with pytest.raises(PlannerError) as err:
        planner_for(llm_server).plan(STORY, "movie", 10)
    message = str(err.value)
    assert "story-model" in message and llm_server.base_url in message
    assert "invalid shot list twice" in message and '"shots": [...]}' in message
    # The first answer's problem was named in the retry request.
    assert "shot 0: camera" in llm_server.requests[1].body["messages"][3]["content"]


def test_an_unreachable_service_names_the_url(llm_server: LLMServer) -> None:
    llm_server.port = processes.free_port()  # nothing listens there
    with pytest.raises(PlannerError, match=r"cannot reach the LLM at http://127\.0\.0\.1:\d+/v1"):
        planner_for(llm_server).plan(STORY, "movie", 10)


def test_http_errors_name_the_url_and_never_the_key(llm_server: LLMServer) -> None:
    llm_server.answer(Answer(status=401, body={"error": {
        "message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}))
    with pytest.raises(PlannerError) as err:
        planner_for(llm_server).plan(STORY, "movie", 10)
    message = str(err.value)
    assert f"the LLM at {llm_server.base_url}/chat/completions answered HTTP 401" in message
    assert "Incorrect API key provided: ***" in message
    assert KEY not in message


def test_a_slow_service_times_out_with_a_clear_error(llm_server: LLMServer) -> None:
    llm_server.answer(Answer(content=json.dumps(SHOTS), delay_s=1.0))
    with pytest.raises(PlannerError, match=r"did not answer within 0\.2 s"):
        planner_for(llm_server, timeout=0.2).plan(STORY, "movie", 10)


ZH_STORY = "清晨，老陈推开木门。“你是谁？”老陈问。孩子没有回答。"
ZH_PLAN = {
    "characters": [{"name": "老陈", "description": "elderly man, grey stubble, blue work jacket"}],
    "shots": [
        {"description": "清晨，老陈推开木门。", "action": "老陈推开木门。", "camera": "wide",
         "prompt": "an old man pushing open a wooden door at dawn, quiet small town",
         "characters": ["老陈"]},
        {"description": "“你是谁？”老陈问。", "action": "", "camera": "medium",
         "prompt": "an old man asking a question, courtyard", "characters": ["老陈"],
         "dialogue": [{"speaker": "老陈", "line": "你是谁？"}]},
    ],
}


def planner_in(server: LLMServer, language: str) -> OpenAIPlanner:
    planner = planner_for(server)
    planner.prompt_language = language
    return planner


def test_a_chinese_story_gets_english_image_prompts_and_keeps_its_words(llm_server):
    llm_server.answer(json.dumps(ZH_PLAN, ensure_ascii=False))
    plan = planner_in(llm_server, "en").plan(ZH_STORY, "水彩画风格", 10)
    system = llm_server.requests[0].body["messages"][0]["content"]
    assert "- prompt: an image prompt in English for a text-to-image model (whatever the " \
           "story's language)" in system
    assert "- action: what we see in the shot, one short sentence, in the story's language." \
        in system
    # The image prompts are English; what we see and hear stays Chinese.
    assert [s.prompt for s in plan.shots] == [s["prompt"] for s in ZH_PLAN["shots"]]
    assert [s.action for s in plan.shots] == ["老陈推开木门。", ""]
    assert [(d.speaker, d.line) for d in plan.shots[1].dialogue] == [("老陈", "你是谁？")]


def test_a_chinese_image_prompt_is_sent_back_when_english_was_asked(llm_server):
    slipped = json.loads(json.dumps(ZH_PLAN))
    slipped["shots"][0]["prompt"] = "清晨，老人推开木门"
    llm_server.answer(json.dumps(slipped, ensure_ascii=False))
    llm_server.answer(json.dumps(ZH_PLAN, ensure_ascii=False))
    plan = planner_in(llm_server, "en").plan(ZH_STORY, "movie", 10)
    assert plan.shots[0].prompt == ZH_PLAN["shots"][0]["prompt"]
    retry = llm_server.requests[1].body["messages"][-1]["content"]
    assert "shot 0: prompt: write it in English" in retry


def test_a_chinese_reading_model_can_have_chinese_prompts(llm_server):
    chinese = json.loads(json.dumps(ZH_PLAN))
    chinese["shots"][0]["prompt"] = "清晨，老人推开木门"
    llm_server.answer(json.dumps(chinese, ensure_ascii=False))
    plan = planner_in(llm_server, "zh").plan(ZH_STORY, "movie", 10)
    assert plan.shots[0].prompt == "清晨，老人推开木门"
    assert "an image prompt in Simplified Chinese" in \
        llm_server.requests[0].body["messages"][0]["content"]


def test_the_prompt_language_is_english_unless_configured():
    assert Config().planner.prompt_language == "en"
    assert planner_for_config(Config()).prompt_language == "en"


def planner_for_config(cfg: Config) -> OpenAIPlanner:
    cfg.planner.backend = "openai"
    planner = make_planner(cfg)
    assert isinstance(planner, OpenAIPlanner)
    return planner
