// What both pages of the web board share: reaching the API with the browser's session cookie
// (back to the login form when it has ended) and following a task's progress events.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

export function say(el, text, bad = false) {
  el.textContent = text;
  el.classList.toggle("error", bad);
}

// A URL of this board, under the root path a proxy may serve it from (<base href>).
export const here = (path) => new URL(path, document.baseURI);

function backToLogin() {
  const root = new URL(document.baseURI).pathname;
  const page = "/" + location.pathname.slice(root.length);
  location.assign(here("login?next=" + encodeURIComponent(page)));
}

// fetch() of an API path; options.json is sent as a JSON body. Errors are thrown with the
// server's one line.
export async function api(path, options = {}) {
  const init = Object.assign({}, options, {headers: Object.assign({}, options.headers || {})});
  if (options.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  const answer = await fetch(here(path), init);
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

export const send = async (path, json, method = "POST") =>
  (await api(path, {method, json})).json();

// A task's events until it ends: onProgress(snapshot) per change; the final task object.
export async function follow(taskId, onProgress) {
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
