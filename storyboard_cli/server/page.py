"""The web page of `storyboard serve`: `/` lists the projects (and makes new ones), and
`/projects/{id}` shows a project's board: the page of `export --format html` (one template,
board/html.py, fetched from /api/projects/{id}/board with the frames as links), a Generate
button with live progress from the events stream, and per panel a prompt to edit and render
again, whose new frame replaces the old one when its task ends.

How it authenticates: these two pages are the same static shell for everyone and carry no
data. Their script fetches everything from /api; when the server answers 401 the page asks for
the API token once, keeps it in the tab's sessionStorage (gone when the tab closes; never in a
cookie, so other sites cannot make the browser use it) and sends it as
`Authorization: Bearer` on every call, the event streams included (read with fetch, as
EventSource cannot send headers). Plain HTML and a little JavaScript, no build step.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from storyboard_cli.board.html import CSS as BOARD_CSS
from storyboard_cli.server import routes

HTML = "text/html; charset=utf-8"

CSS = """
.bar { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: 10px 16px;
  align-items: center; padding: 10px 28px; background: #1d1d1b; color: #f6f5f1; }
.bar a { color: #f6f5f1; }
.bar .grow { flex: 1; }
.bar progress { width: 220px; }
.warnings p { margin: 6px 16px; padding: 6px 10px; background: #fff4d6;
  border-left: 4px solid #d9a400; }
button { font: inherit; padding: 5px 12px; border-radius: 4px; border: 1px solid #8a8a84;
  background: #fff; color: #1d1d1b; cursor: pointer; }
button:disabled { opacity: .5; cursor: default; }
.error { color: #b3261e; font-weight: 600; }
.bar .error { color: #ffb4a9; }
.wrap { padding: 22px 28px; max-width: 1100px; }
table.projects { border-collapse: collapse; width: 100%; background: #fff; }
table.projects th, table.projects td { text-align: left; padding: 6px 10px;
  border-bottom: 1px solid #d9d8d2; }
form.new { display: grid; gap: 8px; max-width: 640px; margin-top: 24px; }
form.new textarea { min-height: 120px; }
input, textarea { font: inherit; padding: 5px 8px; border: 1px solid #b9b8b2; border-radius: 4px; }
.regen { padding: 0 12px 12px; display: flex; flex-direction: column; gap: 6px; }
.regen textarea { min-height: 64px; font-size: 13px; }
.regen .state { color: #6b6b66; font-size: 12px; min-height: 1em; }
#login { display: none; gap: 8px; align-items: center; }
"""

SCRIPT = r"""
const TOKEN_KEY = "storyboard-api-token";
const $ = (sel, root = document) => root.querySelector(sel);
const say = (el, text, bad = false) => {
  el.textContent = text;
  el.classList.toggle("error", bad);
};

function askToken() {
  const form = $("#login");
  form.style.display = "flex";
  $("input", form).focus();
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#login input").value.trim());
  location.reload();
});

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const init = Object.assign({}, options, {headers});
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  const answer = await fetch(new URL(path, document.baseURI), init);
  if (answer.status === 401) {
    askToken();
    throw new Error("this server needs its API token (STORYBOARD_API_TOKEN)");
  }
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({error: answer.statusText}));
    throw new Error(body.error || answer.statusText);
  }
  return answer;
}

// A task's events until it ends: onProgress(snapshot) per change; the final task object.
async function follow(taskId, onProgress) {
  const answer = await api("api/tasks/" + encodeURIComponent(taskId) + "/events");
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) throw new Error("the progress stream ended early");
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (!data) continue;  // a heartbeat
      const payload = JSON.parse(data);
      if (event === "progress") onProgress(payload);
      else if (event === "task") return payload;
      else if (event === "error") throw new Error(payload.error);
    }
  }
}

function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }

async function showProjects() {
  const state = $("#state");
  try {
    const projects = await (await api("api/projects")).json();
    const table = $("table.projects");
    for (const p of projects) {
      const row = table.insertRow();
      row.dataset.project = p.id;
      cell(row, p.id);
      const link = document.createElement("a");
      link.href = "projects/" + p.id;
      link.textContent = p.title;
      cell(row, "").append(link);
      cell(row, p.style); cell(row, p.aspect); cell(row, p.shots);
      cell(row, p.last_task_status || "");
    }
    say(state, projects.length ? "" : "No projects yet: write one below.");
  } catch (err) { say(state, err.message, true); }
}

async function createProject(ev) {
  ev.preventDefault();
  const field = (name) => ev.target.elements.namedItem(name).value;
  try {
    const project = await (await api("api/projects", {method: "POST", json: {
      title: field("title"), story_text: field("story_text"), style: field("style"),
    }})).json();
    location.href = new URL("projects/" + project.id, document.baseURI);
  } catch (err) { say($("#state"), err.message, true); }
}

// --- a project's board ----------------------------------------------------------------------

const projectRef = document.body.dataset.project;
const projectApi = "api/projects/" + encodeURIComponent(projectRef);
let boardStyle = null, boardVersion = 0;

// The board page (the export's template) with a prompt box on every panel, swapped in whole;
// of calls that overlap, only the latest one's board is shown.
async function loadBoard() {
  const mine = ++boardVersion;
  const [html, view] = await Promise.all([
    api(projectApi + "/board").then((answer) => answer.text()),
    api(projectApi).then((answer) => answer.json()),
  ]);
  if (mine !== boardVersion) return;
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const shot of view.shots) {
    const panel = $(`article.panel[data-shot="${shot.number}"]`, doc);
    if (panel) addRegen(panel, shot);
  }
  if (!boardStyle) {
    boardStyle = doc.querySelector("style");
    document.head.append(boardStyle);
    document.title = doc.title;
  }
  $("#board").replaceChildren(...doc.body.children);
}

const livePanel = (number) => $(`#board article.panel[data-shot="${number}"]`);

function setFrame(panel, shot) {
  const img = document.createElement("img");
  img.src = shot.image_url;
  img.alt = "Shot " + shot.number;
  img.decoding = "async";
  if (shot.width && shot.height) { img.width = shot.width; img.height = shot.height; }
  const figure = document.createElement("figure");
  figure.className = "frame";
  figure.append(img);
  $(".frame", panel).replaceWith(figure);
}

function addRegen(panel, shot) {
  const box = document.createElement("div");
  box.className = "regen";
  box.innerHTML = '<textarea aria-label="prompt"></textarea>' +
    '<button type="button">Regenerate with this prompt</button><span class="state"></span>';
  const [prompt, button, state] = box.children;
  prompt.value = shot.prompt;
  button.addEventListener("click", async () => {
    button.disabled = true;
    say(state, "queued");
    try {
      const queued = await (await api("api/shots/" + shot.id + "/generate", {method: "POST",
        json: {prompt: prompt.value, style: ""}})).json();
      const task = await follow(queued.task_id, (snap) => {
        const s = snap.shots[0];
        showWarnings(snap.warnings);
        say(state, s && s.state ? s.state
            : s && s.steps ? `${s.status} ${s.step}/${s.steps}` : snap.status);
      });
      if (task.status !== "succeeded") throw new Error(`task ${task.status}: ${task.error}`);
      setFrame(livePanel(shot.number) || panel, task.shots[0]);
      say(state, "done");
    } catch (err) { say(state, err.message, true); }
    button.disabled = false;
  });
  panel.append(box);
}

function showWarnings(warnings) {
  // What the task's user should know (a language the model cannot read, with the fix).
  const box = $("#warnings");
  if (!box || !warnings) return;
  box.replaceChildren(...warnings.map((text) => {
    const line = document.createElement("p");
    line.textContent = "Warning: " + text;
    return line;
  }));
}

async function generate() {
  const button = $("#generate"), bar = $("#progress"), state = $("#state");
  button.disabled = true;
  let done = 0;
  try {
    const queued = await (await api(projectApi + "/generate-storyboard",
      {method: "POST", json: {style: "", story_text: ""}})).json();
    say(state, "queued");
    const task = await follow(queued.task_id, (snap) => {
      const finished = snap.shots.filter((s) => s.status === "done").length;
      showWarnings(snap.warnings);
      if (snap.shots.length) {
        bar.max = snap.shots.length;
        bar.value = finished;
        // A model being loaded for the next call, said once for all its shots.
        const loading = snap.shots.find((s) => s.state);
        say(state, `shots ${finished}/${snap.shots.length} (${snap.status})` +
            (loading ? ` · ${loading.state}` : ""));
      } else {
        bar.removeAttribute("value");
        say(state, `planning (${snap.status})`);
      }
      if (finished !== done || (snap.shots.length && !$("#board article.panel"))) {
        done = finished;
        loadBoard().catch(() => {});  // frames appear as they are rendered
      }
    });
    await loadBoard();
    say(state, task.status === "succeeded" ? `task ${task.status}`
        : `task ${task.status}: ${task.error}`, task.status !== "succeeded");
  } catch (err) { say(state, err.message, true); }
  button.disabled = false;
}

if (projectRef) {
  $("#generate").addEventListener("click", generate);
  loadBoard().catch((err) => say($("#state"), err.message, true));
} else {
  $("form.new").addEventListener("submit", createProject);
  showProjects();
}
"""


def shell(request: Request, title: str, content: str, project: str = "") -> str:
    """A page around `content`; links and API calls are relative to <base>, so the page works
    under a proxy's root path as well."""
    root = escape(request.scope.get("root_path", "").rstrip("/") + "/")
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<base href="{root}">\n<title>{escape(title)}</title>\n'
        f"<style>{BOARD_CSS if not project else ''}{CSS}</style>\n</head>\n"
        f'<body data-project="{escape(project)}">\n'
        '<nav class="bar"><a href="./">storyboard</a><span class="grow"></span>'
        '<form id="login"><input type="password" placeholder="API token" '
        'aria-label="API token"><button>Use token</button></form>'
        f"{content}</nav>\n"
    )


def index_page(request: Request) -> str:
    return shell(request, "storyboard", '<span id="state"></span>') + (
        '<div class="wrap"><h1>Projects</h1>\n'
        '<table class="projects"><tr><th>id</th><th>title</th><th>style</th><th>aspect</th>'
        "<th>shots</th><th>last task</th></tr></table>\n"
        '<form class="new"><h2>New project</h2>'
        '<input name="title" placeholder="Title" required>'
        '<input name="style" placeholder="Style (movie, anime, noir, watercolor, ...)">'
        '<textarea name="story_text" placeholder="The story" required></textarea>'
        '<button>Create project</button></form></div>\n'
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def board_page(request: Request, project: str) -> str:
    controls = ('<button id="generate" type="button">Generate storyboard</button>'
                '<progress id="progress" max="1" value="0"></progress><span id="state"></span>')
    return shell(request, "storyboard", controls, project) + (
        '<div id="warnings" class="warnings" role="status"></div>\n'
        f'<div id="board"></div>\n<script>{SCRIPT}</script>\n</body>\n</html>\n')


def add_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(index_page(request))

    @app.get(routes.PROJECT, response_class=HTMLResponse, include_in_schema=False)
    async def project_board(request: Request, project: str) -> HTMLResponse:
        return HTMLResponse(board_page(request, project))
