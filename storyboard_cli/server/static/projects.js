// The projects page: every project, and a form for a new one.
import {$, api, here, say} from "./api.js";

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

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
    location.assign(here("projects/" + project.id));
  } catch (err) { say($("#state"), err.message, true); }
}

$("form.new").addEventListener("submit", createProject);
$("form.new button").disabled = false;
showProjects();
