// A project's board, to look at and to edit: the page of `export --format html` (one template,
// fetched from /api/projects/{p}/board), with the story, the cast and every panel made
// editable through the API. Each change is one API call, then the board is fetched again
// (the server numbers the shots; nothing is guessed here). Tasks (generate, render the stale
// panels, a new story, one panel) show their progress from the task's event stream, frames
// appearing as they are rendered.
import {$, $$, api, follow, say, send} from "./api.js";

const app = $("#app");
const projectApi = "api/projects/" + encodeURIComponent(app.dataset.project);
const cameras = JSON.parse(app.dataset.cameras || "[]");
const state = $("#state");
const SHOT_TYPE = "application/x-storyboard-shot";

let view = null;        // the project object the board shows
let boardVersion = 0;   // of loads that overlap, only the latest one's board is shown
let focusAfter = null;  // the control to focus once the board is fetched again
let following = 0;      // tasks being followed
const editing = new Set();  // the shots (ids) whose edit forms are open: kept open on reload

// --- building the page --------------------------------------------------------------------

// An element: el("button", {type: "button", "aria-label": "..."}, "text", child, ...).
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

const shotApi = (shot) => "api/shots/" + shot.id;

// Fetch the board and the project object again and show them.
async function loadBoard() {
  const mine = ++boardVersion;
  const [html, fresh] = await Promise.all([
    api(projectApi + "/board").then((answer) => answer.text()),
    api(projectApi).then((answer) => answer.json()),
  ]);
  if (mine !== boardVersion) return;
  view = fresh;
  const doc = new DOMParser().parseFromString(html, "text/html");
  const byNumber = new Map(view.shots.map((shot) => [shot.number, shot]));
  for (const panel of $$("article.panel", doc)) {
    const shot = byNumber.get(Number(panel.dataset.shot));
    if (!shot) continue;
    // The quick tools (and the handle to drag) right under the frame, the forms below.
    const [quick, more] = panelTools(shot);
    $(".fields", panel).before(quick);
    panel.append(more);
  }
  document.title = doc.title;
  $("#board").replaceChildren(...doc.body.children);
  const header = $("#board .board-header");
  if (header) header.after(storyEditor(), castEditor());
  showCounts();
  if (focusAfter) {
    // A button that is disabled now (the first shot's "earlier") hands focus to its panel.
    let target = $(focusAfter);
    focusAfter = null;
    if (target && target.disabled) target = $("summary", target.closest("article"));
    if (target) target.focus();
  }
}

function showCounts() {
  const stale = view ? view.shots.filter((shot) => shot.stale && !shot.approved).length : 0;
  const button = $("#render-stale");
  button.textContent = `Render stale panels (${stale})`;
  button.disabled = following > 0 || stale === 0;
  $("#generate").disabled = following > 0;
}

// --- changes and tasks ------------------------------------------------------------------------

// One change through the API, then the board again; `focus` (a selector) is focused after.
async function change(what, path, body, {method = "POST", focus = null} = {}) {
  say(state, what + " ...");
  try {
    await send(path, body, method);
    focusAfter = focus;
    await loadBoard();
    say(state, what + ": done");
  } catch (err) {
    say(state, `${what}: ${err.message}`, true);
  }
}

// What the task's user should know (a language the model cannot read, with the fix).
function showWarnings(warnings) {
  const box = $("#warnings");
  if (!box || !warnings) return;
  box.replaceChildren(...warnings.map((text) => {
    const line = document.createElement("p");
    line.textContent = "Warning: " + text;
    return line;
  }));
}

// Queue a task, then follow it to its end, frames appearing as they are rendered.
async function runTask(what, queue) {
  const bar = $("#progress");
  following += 1;
  showCounts();
  let drawn = -1;
  try {
    const queued = await queue();
    say(state, `${what}: queued`);
    const task = await follow(queued.task_id, (snap) => {
      const finished = snap.shots.filter((s) => s.status === "done").length;
      showWarnings(snap.warnings);
      if (snap.shots.length) {
        bar.max = snap.shots.length;
        bar.value = finished;
        // A model being loaded for the next call, said once for all its shots.
        const loading = snap.shots.find((s) => s.state);
        say(state, `${what}: shots ${finished}/${snap.shots.length} (${snap.status})` +
            (loading ? ` · ${loading.state}` : ""));
      } else {
        bar.removeAttribute("value");
        say(state, `${what}: planning (${snap.status})` + (snap.state ? ` · ${snap.state}` : ""));
      }
      if (finished !== drawn && (finished || snap.shots.length)) {
        drawn = finished;
        loadBoard().catch(() => {});
      }
    });
    await loadBoard();
    const ok = task.status === "succeeded";
    say(state, ok ? `${what}: task succeeded` : `${what}: task ${task.status}: ${task.error}`,
        !ok);
  } catch (err) { say(state, `${what}: ${err.message}`, true); }
  following -= 1;
  showCounts();
}

// --- the story and the cast -------------------------------------------------------------------

// The story's and the cast's editors are made once and moved into each new board, so what a
// writer typed and whether they are open survive every reload.
let storyBox = null, castBox = null;
let storyTyped = false;  // the writer's text in the story box, not yet sent: kept

function storyEditor() {
  if (!storyBox) {
    const text = el("textarea", {id: "story-text", "aria-label": "Story", rows: 8,
                                 oninput: () => { storyTyped = true; }});
    storyBox = el("details", {id: "story", class: "editor"}, el("summary"), text,
      el("button", {type: "button", id: "update-story", onclick: () =>
        runTask("Update the story", async () => {
          const queued = await send(projectApi + "/revisions", {story_text: text.value});
          storyTyped = false;  // sent: the story shown from now on is the new revision
          return queued;
        })}, "Update story"),
      el("p", {class: "hint"}, "A new revision: shots whose text is unchanged keep their " +
         "panels; new and changed ones are rendered."));
  }
  // The story as it is now, unless the writer is changing it.
  if (!storyTyped) $("textarea", storyBox).value = view.story_text;
  $("summary", storyBox).textContent = `Story (revision ${view.revisions || 1})`;
  return storyBox;
}

function castEditor() {
  castBox = castBox || el("details", {id: "cast-editor", class: "editor"});
  const box = castBox;
  const rows = view.cast.map((person) => {
    const description = el("input", {value: person.description,
                                      "aria-label": `Description of ${person.name}`});
    return el("div", {class: "row"}, el("span", {class: "name"}, person.name), description,
      el("button", {type: "button", "aria-label": `Save ${person.name}`, onclick: () =>
        change(`Describe ${person.name}`, projectApi + "/cast",
               {set: {[person.name]: description.value}},
               {method: "PATCH", focus: "#cast-editor summary"})}, "Save"),
      el("button", {type: "button", "aria-label": `Remove ${person.name}`, onclick: () =>
        change(`Remove ${person.name}`, projectApi + "/cast", {remove: [person.name]},
               {method: "PATCH", focus: "#cast-editor summary"})}, "Remove"));
  });
  const name = el("input", {"aria-label": "New character's name", placeholder: "Name"});
  const description = el("input", {"aria-label": "New character's description",
                                   placeholder: "Description"});
  const add = el("form", {class: "row", onsubmit: (ev) => {
    ev.preventDefault();
    change(`Add ${name.value}`, projectApi + "/cast", {set: {[name.value]: description.value}},
           {method: "PATCH", focus: "#cast-editor summary"});
  }}, name, description, el("button", {type: "submit"}, "Add character"));
  box.replaceChildren(el("summary", {}, `Cast (${view.cast.length})`), ...rows, add);
  return box;
}

// --- a panel's tools ----------------------------------------------------------------------------

// A panel's quick tools (approve, move, render) and its edit forms, behind "Edit…".
function panelTools(shot) {
  const n = shot.number, last = view.shots.length;
  const id = (name) => `shot-${n}-${name}`;
  const button = (name, label, text, onclick, extra = {}) =>
    el("button", {type: "button", id: id(name), "aria-label": label, onclick, ...extra}, text);
  const quick = el("div", {class: "quick tools"},
    button("approve", `${shot.approved ? "Unapprove" : "Approve"} shot ${n}`,
      shot.approved ? "Approved ✓" : "Approve",
      () => change(`${shot.approved ? "Unapprove" : "Approve"} shot ${n}`,
                   shotApi(shot) + (shot.approved ? "/unapprove" : "/approve"), {},
                   {focus: "#" + id("approve")}),
      {"aria-pressed": String(shot.approved)}),
    button("earlier", `Move shot ${n} earlier`, "←",
      () => change(`Move shot ${n}`, projectApi + "/shots/move", {shot: n, to: n - 1},
                   {focus: `#shot-${n - 1}-earlier`}), {disabled: n === 1}),
    button("later", `Move shot ${n} later`, "→",
      () => change(`Move shot ${n}`, projectApi + "/shots/move", {shot: n, to: n + 1},
                   {focus: `#shot-${n + 1}-later`}), {disabled: n === last}),
    grip(shot),
    button("render", `Render shot ${n} again`, "Render",
      () => runTask(`Render shot ${n}`, () => send(shotApi(shot) + "/generate",
                                                     {prompt: "", style: ""}))));
  const more = el("details", {class: "more", open: editing.has(shot.id)},
    el("summary", {id: id("edit"), "aria-label": `Edit shot ${n}`}, "Edit…"),
    fieldsForm(shot), noteForm(shot), splitForm(shot), otherEdits(shot));
  more.addEventListener("toggle", () => {
    if (more.open) editing.add(shot.id);
    else editing.delete(shot.id);
  });
  return [quick, el("div", {class: "tools"}, more)];
}

// Drag a panel's handle onto another panel to move it there (the arrows do the same).
function grip(shot) {
  const handle = el("span", {class: "grip", draggable: "true", title: "Drag to move",
                             "aria-hidden": "true"}, "⠿");
  handle.addEventListener("dragstart", (ev) => {
    ev.dataTransfer.setData(SHOT_TYPE, String(shot.number));
    ev.dataTransfer.effectAllowed = "move";
  });
  return handle;
}

function onDrag(ev) {
  const panel = ev.target.closest && ev.target.closest("#board article.panel");
  if (!panel || !ev.dataTransfer.types.includes(SHOT_TYPE)) return;
  ev.preventDefault();
  if (ev.type === "dragover") panel.classList.add("drop-target");
  if (ev.type === "dragleave") panel.classList.remove("drop-target");
  if (ev.type !== "drop") return;
  panel.classList.remove("drop-target");
  const from = Number(ev.dataTransfer.getData(SHOT_TYPE)), to = Number(panel.dataset.shot);
  if (from !== to) {
    change(`Move shot ${from}`, projectApi + "/shots/move", {shot: from, to},
           {focus: `#shot-${to}-earlier`});
  }
}

function field(label, control) {
  return el("label", {}, label, control);
}

// The shot's fields; only those changed are sent.
function fieldsForm(shot) {
  const n = shot.number;
  const sizes = cameras.includes(shot.camera) || !shot.camera ? cameras : [shot.camera, ...cameras];
  const camera = el("select", {name: "camera"},
    ...sizes.map((size) => el("option", {value: size, selected: size === shot.camera}, size)));
  const action = el("input", {name: "action", value: shot.action});
  const dialogue = el("textarea", {name: "dialogue", rows: 2});
  dialogue.value = shot.dialogue.map((d) => d.speaker ? `${d.speaker}: ${d.line}` : d.line)
    .join("\n");
  const cast = el("fieldset", {class: "characters"}, el("legend", {}, "Characters"),
    ...view.cast.map((person) => el("label", {},
      el("input", {type: "checkbox", value: person.name,
                   checked: shot.characters.includes(person.name)}), person.name)));
  // No limits here: the server checks every field, and says what is wrong in one line.
  const duration = el("input", {name: "duration", type: "number", step: "any",
                                value: shot.duration});
  const prompt = el("textarea", {name: "prompt", rows: 2});
  prompt.value = shot.prompt;
  return el("form", {class: "fields-form", onsubmit: (ev) => {
    ev.preventDefault();
    const given = {
      camera: camera.value, action: action.value,
      dialogue: dialogue.value.split("\n").map((line) => line.trim()).filter(Boolean),
      characters: $$("input:checked", cast).map((box) => box.value),
      duration: Number(duration.value), prompt: prompt.value,
    };
    const was = {camera: shot.camera, action: shot.action,
                 dialogue: shot.dialogue.map((d) => d.speaker ? `${d.speaker}: ${d.line}`
                                                             : d.line),
                 characters: shot.characters, duration: shot.duration, prompt: shot.prompt};
    const changed = Object.fromEntries(Object.entries(given).filter(
      ([name, value]) => JSON.stringify(value) !== JSON.stringify(was[name])));
    if (!Object.keys(changed).length) {
      say(state, `Shot ${n}: nothing changed`);
      return;
    }
    change(`Edit shot ${n}`, shotApi(shot), changed, {method: "PATCH", focus: `#shot-${n}-edit`});
  }},
  field("Shot size", camera), field("Action", action),
  field("Dialogue (one “SPEAKER: line” a line)", dialogue), cast,
  field("Seconds", duration), field("Prompt", prompt),
  el("button", {type: "submit", "aria-label": `Save shot ${n}`}, "Save"));
}

function noteForm(shot) {
  const n = shot.number;
  const text = el("textarea", {name: "note", rows: 2, "aria-label": `Note on shot ${n}`});
  text.value = shot.notes || "";
  return el("form", {class: "note-form", onsubmit: (ev) => {
    ev.preventDefault();
    change(`Note on shot ${n}`, shotApi(shot) + "/note", {text: text.value},
           {focus: `#shot-${n}-edit`});
  }}, field("Note", text), el("button", {type: "submit", "aria-label": `Save the note on shot ${n}`},
                              "Save note"));
}

function splitForm(shot) {
  const n = shot.number;
  const at = el("input", {name: "at", placeholder: "near the middle",
                          "aria-label": `Words shot ${n}'s second half starts with`});
  return el("form", {class: "inline", onsubmit: (ev) => {
    ev.preventDefault();
    change(`Split shot ${n}`, projectApi + "/shots/split",
           {shot: n, at: at.value.trim() || null}, {focus: `#shot-${n + 1}-edit`});
  }}, field("Split at", at), el("button", {type: "submit", "aria-label": `Split shot ${n}`},
                                 "Split"));
}

function otherEdits(shot) {
  const n = shot.number, last = view.shots.length;
  const action = el("input", {name: "insert-action", placeholder: "What we see",
                              "aria-label": `Action of a new shot after shot ${n}`});
  const insert = el("form", {class: "inline", onsubmit: (ev) => {
    ev.preventDefault();
    change(`Insert a shot after shot ${n}`, projectApi + "/shots/insert",
           {after: n, fields: {action: action.value}}, {focus: `#shot-${n + 1}-edit`});
  }}, field("New shot after this", action),
  el("button", {type: "submit", "aria-label": `Insert a shot after shot ${n}`}, "Insert"));
  const merge = el("button", {type: "button", "aria-label": `Merge shot ${n} with shot ${n + 1}`,
                              disabled: n === last, onclick: () =>
    change(`Merge shots ${n} and ${n + 1}`, projectApi + "/shots/merge", {shots: [n, n + 1]},
           {focus: `#shot-${n}-edit`})}, "Merge with next");
  const sure = el("span", {class: "confirm", hidden: true}, `Delete shot ${n}? `,
    el("button", {type: "button", "aria-label": `Yes, delete shot ${n}`, onclick: () =>
      change(`Delete shot ${n}`, projectApi + "/shots/delete", {shot: n},
             {focus: "#state"})}, "Delete"),
    el("button", {type: "button", "aria-label": `Keep shot ${n}`, onclick: () => {
      sure.hidden = true;
      remove.focus();
    }}, "Keep"));
  const remove = el("button", {type: "button", "aria-label": `Delete shot ${n}`, onclick: () => {
    sure.hidden = false;
    $("button", sure).focus();
  }}, "Delete…");
  return el("div", {class: "other"}, insert, el("div", {class: "row"}, merge, remove, sure));
}

// --- the top bar ----------------------------------------------------------------------------

function exportLink() {
  const format = $("#export-format").value;
  $("#download").href = `${projectApi}/export?format=${encodeURIComponent(format)}`;
  $("#download").setAttribute("aria-label", `Download the board as ${format}`);
}

// The file's name the server gives in Content-Disposition (filename*= first: UTF-8).
function attachmentName(answer, fallback) {
  const header = answer.headers.get("Content-Disposition") || "";
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (encoded) return decodeURIComponent(encoded[1]);
  const plain = /filename="([^"]+)"/i.exec(header);
  return plain ? plain[1] : fallback;
}

// An export can take a while and can fail (a missing package, no shots yet): the download is
// fetched here, so the status line says what happens, then handed to the browser as a file.
async function download(ev) {
  ev.preventDefault();
  const format = $("#export-format").value;
  say(state, `Export ${format} ...`);
  try {
    const answer = await api(ev.currentTarget.getAttribute("href"));
    const file = URL.createObjectURL(await answer.blob());
    const link = el("a", {href: file, download: attachmentName(answer, `board.${format}`)});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(file), 60_000);
    say(state, `Export ${format}: done`);
  } catch (err) { say(state, `Export ${format}: ${err.message}`, true); }
}

$("#generate").addEventListener("click", () => runTask("Generate",
  () => send(projectApi + "/generate-storyboard", {style: "", story_text: ""})));
$("#render-stale").addEventListener("click", () => runTask("Render stale panels",
  () => send(projectApi + "/generate-storyboard", {style: "", story_text: "", stale: true})));
$("#undo").addEventListener("click", () => change("Undo", projectApi + "/undo", {},
                                                  {focus: "#undo"}));
$("#export-format").addEventListener("change", exportLink);
$("#download").addEventListener("click", download);
exportLink();
for (const kind of ["dragover", "dragleave", "drop"]) {
  $("#board").addEventListener(kind, onDrag);
}
// The board; a task still under way (the page opened, or reloaded, meanwhile) is followed.
loadBoard().then(() => {
  const task = view.task;
  if (task && (task.status === "pending" || task.status === "running")) {
    runTask(`Task ${task.id.slice(0, 8)}`, async () => ({task_id: task.id}));
  }
}).catch((err) => say(state, err.message, true));
