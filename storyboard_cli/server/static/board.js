// The web board of `storyboard serve`: the projects page and a project's board. Everything it
// shows comes from /api, sent with the browser's session cookie; when the session has ended
// (401), the browser goes to the login form and comes back here.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const say = (el, text, bad = false) => {
  el.textContent = text;
  el.classList.toggle("error", bad);
};

function backToLogin() {
  const here = location.pathname.slice(new URL(document.baseURI).pathname.length - 1);
  location.assign(new URL("login?next=" + encodeURIComponent(here), document.baseURI));
}

async function api(path, options = {}) {
  const init = Object.assign({}, options, {headers: Object.assign({}, options.headers || {})});
  if (options.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  const answer = await fetch(new URL(path, document.baseURI), init);
  if (answer.status === 401) {
    backToLogin();
    throw new Error("your session has ended: log in again");
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

// --- the projects page ------------------------------------------------------------------------

function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }

async function showProjects() {
  const state = $("#state");
  try {
    const projects = await (await api("api/projects")).json();
    const body = $("table.projects tbody");
    for (const p of projects) {
      const row = body.insertRow();
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
    location.assign(new URL("projects/" + project.id, document.baseURI));
  } catch (err) { say($("#state"), err.message, true); }
}

// --- a project's board ------------------------------------------------------------------------

const app = $("#app");
const projectRef = app ? app.dataset.project : null;
const projectApi = "api/projects/" + encodeURIComponent(projectRef);
let boardVersion = 0;

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
  document.title = doc.title;
  $("#board").replaceChildren(...doc.body.children);
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
        say(state, s && s.steps ? `${s.status} ${s.step}/${s.steps}` : snap.status);
      });
      if (task.status !== "succeeded") throw new Error(`task ${task.status}: ${task.error}`);
      await loadBoard();
      say($(".regen .state", $(`#board article.panel[data-shot="${shot.number}"]`)), "done");
    } catch (err) { say(state, err.message, true); }
    button.disabled = false;
  });
  panel.append(box);
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
      if (snap.shots.length) {
        bar.max = snap.shots.length;
        bar.value = finished;
        say(state, `shots ${finished}/${snap.shots.length} (${snap.status})`);
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
