"""The web board of `storyboard serve` in a real browser (Debian's headless Chromium through
Playwright; no browser download): the login form asks for the API token, a writer creates a
project, generates its storyboard watching the progress, and renders one panel again with an
edited prompt, whose new frame replaces the old one."""

from __future__ import annotations

import shutil

from test_board_export import CHROMIUM_ARGS

STORY = "从前有一个小女孩，她住在森林边上。有一天她在森林里迷路了。她遇见了一只狐狸。"

# Every text the progress line shows, as it changes.
RECORD_STATES = """() => {
  window.states = [];
  const state = document.querySelector('#state');
  new MutationObserver(() => window.states.push(state.textContent))
    .observe(state, {childList: true, characterData: true, subtree: true});
}"""
FRAMES = """() => Array.from(document.querySelectorAll('#board .panel img')).map(
  (i) => ({src: i.src, loaded: i.complete && i.naturalWidth > 0}))"""


def test_a_writer_creates_generates_and_redraws_a_panel_in_chromium(served):
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "no Debian chromium: sh scripts/system-deps.sh --test"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed: list[str] = []
            page.on("pageerror", lambda exc: failed.append(str(exc)))
            page.goto(served.url + "/")
            # No session yet: the login form asks for the token, once per browser.
            page.get_by_label("API token").fill(served.token)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("table.projects")).to_be_visible()
            expect(page.locator("#state")).not_to_contain_text("token")

            page.fill("form.new input[name=title]", "森林里的女孩")
            page.fill("form.new input[name=style]", "水彩画风格")
            page.fill("form.new textarea[name=story_text]", STORY)
            page.get_by_role("button", name="Create project").click()
            page.wait_for_url("**/projects/*")
            expect(page.locator("#board h1")).to_have_text("森林里的女孩")
            project_id = page.url.rsplit("/", 1)[1]

            page.evaluate(RECORD_STATES)
            page.get_by_role("button", name="Generate storyboard").click()
            expect(page.locator("#state")).to_have_text("task succeeded", timeout=60_000)
            states = page.evaluate("window.states")
            with served.client() as api:
                shots = api.get(f"/api/projects/{project_id}").json()["shots"]
            assert len(shots) == 3
            assert "queued" in states
            assert any(s.startswith(("planning", "shots ")) for s in states), states
            page.wait_for_function(f"({FRAMES})().filter((f) => f.loaded).length === 3")
            before = page.evaluate(FRAMES)
            assert page.evaluate("document.querySelector('#progress').value") == 3

            panel = page.locator("#board article.panel[data-shot='2']")
            prompt = panel.get_by_label("prompt")
            expect(prompt).to_have_value(shots[1]["prompt"])
            prompt.fill("一只红色的狐狸在月光下，远景")
            panel.get_by_role("button", name="Regenerate with this prompt").click()
            expect(panel.locator(".state")).to_have_text("done", timeout=60_000)
            page.wait_for_function(f"({FRAMES})()[1].loaded")
            after = page.evaluate(FRAMES)
        finally:
            browser.close()

    assert failed == []
    assert after[1]["src"] != before[1]["src"]
    assert [f["src"] for i, f in enumerate(after) if i != 1] == [
        f["src"] for i, f in enumerate(before) if i != 1]
    with served.client() as api:
        redrawn = api.get(f"/api/projects/{project_id}").json()["shots"][1]
    assert redrawn["prompt"] == "一只红色的狐狸在月光下，远景"
    assert redrawn["image_key"] != shots[1]["image_key"]
    with served.client() as api:
        assert api.get(after[1]["src"]).content[:8] == b"\x89PNG\r\n\x1a\n"
