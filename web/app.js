// The upload page: pick and order images, send them as a job, follow the
// job's event stream, then play and offer the video. No framework and no
// build step; the server's CSP allows only this file as script.
"use strict";

const $ = (id) => document.getElementById(id);
const naturalOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const imageTypes = /^image\/(jpeg|png|gif|bmp|tiff|webp)$/;
const imageNames = /\.(jpe?g|png|gif|bmp|tiff?|webp)$/i;

// items are the chosen images in video order: { file, url }.
let items = [];
// job is the running job: { id, events } or null.
let job = null;
// retry repeats the request a missing token stopped, once one is saved.
let retry = null;

// announce tells screen reader users what a click or key just changed.
function announce(text) {
  $("announce").textContent = text;
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

// tokenError makes the error of a request the server refused for want of
// the API token.
function tokenError() {
  const err = new Error("This server needs an API token.");
  err.needsToken = true;
  return err;
}

// fail shows err, or asks for the token and then runs again, if that was
// what stopped it.
function fail(err, again, prefix = "") {
  if (err.needsToken) {
    askToken(again);
  } else {
    showError(prefix + err.message);
  }
}

// api calls the JSON API; the token, if any, rides in a cookie so that the
// event stream and the video, which cannot send headers, carry it too.
async function api(path, init) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, init));
  if (resp.status === 401) throw tokenError();
  const body = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) {
    throw new Error(body && body.error ? body.error : `The server answered ${resp.status}.`);
  }
  return body;
}

function askToken(again) {
  retry = again;
  $("token").hidden = false;
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `img2vid_token=${encodeURIComponent($("token-input").value)}; Path=/; SameSite=Strict${secure}`;
  $("token").hidden = true;
  showError("");
  const again = retry;
  retry = null;
  if (again) again();
});

// --- models ---

async function loadModels() {
  const data = await api("/api/models");
  const interp = $("interp_model");
  const frame = $("frame_model");
  interp.replaceChildren();
  frame.replaceChildren(new Option("None", "", true, true));
  for (const m of data.models) {
    const label = m.available ? m.name + (m.description ? ` — ${m.description}` : "") : `${m.name} (unavailable: ${m.reason})`;
    const opt = new Option(label, m.name);
    opt.disabled = !m.available;
    (m.kind === "interpolate" ? interp : frame).append(opt);
  }
  if (!interp.options.length) interp.append(new Option("No interpolation model", ""));
  interp.disabled = !data.models.some((m) => m.kind === "interpolate" && m.available);
  // Preselect the server's default model, else the first usable one.
  const usable = [...interp.options].filter((o) => !o.disabled);
  const preferred = usable.find((o) => o.value === data.default_interp_model) || usable[0];
  if (preferred) preferred.selected = true;
  if (data.runtime) {
    $("runtime").textContent = `Models run on ${data.runtime.provider} (ONNX Runtime ${data.runtime.version}).`;
  }
}

// --- images ---

function addFiles(fileList) {
  const fresh = [...fileList].filter((f) => imageTypes.test(f.type) || imageNames.test(f.name));
  const skipped = fileList.length - fresh.length;
  fresh.sort((a, b) => naturalOrder.compare(a.name, b.name));
  items = items.concat(fresh.map((file) => ({ file, url: URL.createObjectURL(file) })));
  render();
  let note = `${fresh.length} image${fresh.length === 1 ? "" : "s"} added.`;
  if (skipped) note += ` ${skipped} file${skipped === 1 ? " is" : "s are"} not an image and ${skipped === 1 ? "was" : "were"} skipped.`;
  announce(note);
  showError(skipped ? note : "");
}

function move(from, to) {
  if (to < 0 || to >= items.length || from === to) return;
  const [it] = items.splice(from, 1);
  items.splice(to, 0, it);
  render();
  announce(`${it.file.name} is now image ${to + 1} of ${items.length}.`);
}

function removeAt(i) {
  const [it] = items.splice(i, 1);
  URL.revokeObjectURL(it.url);
  render();
  announce(`${it.file.name} removed.`);
}

function toolButton(text, label, onClick, disabled) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.disabled = disabled;
  b.addEventListener("click", onClick);
  return b;
}

// render redraws the thumbnails; focus stays on the button that was used,
// so reordering by keyboard can go on from where it was.
function render() {
  const focused = document.activeElement && document.activeElement.dataset.key;
  const list = $("thumbs");
  list.replaceChildren();
  items.forEach((it, i) => {
    const li = document.createElement("li");
    li.draggable = true;
    li.dataset.index = i;
    const img = document.createElement("img");
    img.src = it.url;
    img.alt = "";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${i + 1}. ${it.file.name}`;
    const tools = document.createElement("div");
    tools.className = "tools";
    const n = it.file.name;
    const buttons = [
      toolButton("◀", `Move ${n} earlier`, () => move(i, i - 1), i === 0),
      toolButton("▶", `Move ${n} later`, () => move(i, i + 1), i === items.length - 1),
      toolButton("✕", `Remove ${n}`, () => removeAt(i), false),
    ];
    ["earlier", "later", "remove"].forEach((what, k) => (buttons[k].dataset.key = `${it.url}|${what}`));
    tools.append(...buttons);
    li.append(img, name, tools);
    list.append(li);
  });
  if (focused) {
    const again = list.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again && !again.disabled) again.focus();
  }
  $("count").textContent = items.length
    ? `${items.length} image${items.length === 1 ? "" : "s"}, in video order.`
    : "No images yet. They are sorted by name (frame_2 before frame_10); move them with the buttons or by dragging.";
  $("clear").hidden = items.length === 0;
  $("convert").disabled = items.length === 0 || job !== null;
}

// Dragging a thumbnail onto another moves it there.
let dragFrom = -1;
$("thumbs").addEventListener("dragstart", (e) => {
  const li = e.target.closest("li");
  if (!li) return;
  dragFrom = Number(li.dataset.index);
  li.classList.add("dragging");
  e.dataTransfer.effectAllowed = "move";
});
$("thumbs").addEventListener("dragover", (e) => {
  if (dragFrom < 0) return;
  e.preventDefault();
  for (const li of $("thumbs").children) li.classList.toggle("target", li === e.target.closest("li"));
});
$("thumbs").addEventListener("drop", (e) => {
  const li = e.target.closest("li");
  if (dragFrom < 0 || !li) return;
  e.preventDefault();
  e.stopPropagation();
  move(dragFrom, Number(li.dataset.index));
});
$("thumbs").addEventListener("dragend", () => {
  dragFrom = -1;
  render();
});

$("files").addEventListener("change", (e) => {
  addFiles(e.target.files);
  e.target.value = "";
});
$("clear").addEventListener("click", () => {
  items.forEach((it) => URL.revokeObjectURL(it.url));
  items = [];
  render();
  announce("All images removed.");
});

const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (e) => {
    if (dragFrom >= 0) return;
    e.preventDefault();
    drop.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => {
  if (dragFrom >= 0) return;
  e.preventDefault();
  addFiles(e.dataTransfer.files);
});

// --- conversion ---

function formatTime(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

const stageNames = { queued: "Waiting in the queue", decode: "Reading images", encode: "Encoding", done: "Done" };

function showProgress(percent, text) {
  $("progress-box").hidden = false;
  $("bar").value = percent;
  $("bar").setAttribute("aria-valuetext", `${Math.round(percent)}%`);
  $("status").textContent = text;
}

function onJob(view) {
  const p = view.progress || {};
  const percent = p.total ? (100 * p.done) / p.total : 0;
  let text = stageNames[p.stage] || p.stage || "";
  if (p.total) text += ` — ${p.done} of ${p.total} frames (${Math.floor(percent)}%)`;
  if (p.eta_ms) text += `, about ${formatTime(p.eta_ms)} left`;
  showProgress(percent, text);
}

function finish() {
  if (job && job.events) job.events.close();
  job = null;
  $("cancel").hidden = true;
  render();
}

function onDone(view) {
  finish();
  const r = view.result;
  showProgress(100, `Done — ${r.frames} frames, ${r.width}x${r.height}, ${r.duration_s.toFixed(1)} s.`);
  $("result").hidden = false;
  $("video").src = view.video;
  $("download").href = `${view.video}?download=1`;
  $("summary").textContent = `${r.inputs} images became ${r.frames} frames at ${r.fps} fps (${r.format}).`;
  announce("The video is ready.");
}

function onFailed(view) {
  finish();
  showError(view.error ? view.error.error : "The job failed.");
}

function follow(id) {
  const events = new EventSource(`/api/jobs/${id}/events`);
  job = { id, events };
  const parse = (handler) => (e) => handler(JSON.parse(e.data));
  events.addEventListener("progress", parse(onJob));
  events.addEventListener("done", parse(onDone));
  events.addEventListener("failed", parse(onFailed));
  events.addEventListener("canceled", parse(onFailed));
  events.addEventListener("error", () => {
    // The browser reconnects by itself; a job that is gone cannot be
    // followed, so ask once what became of it.
    if (events.readyState === EventSource.CLOSED && job && job.id === id) {
      api(`/api/jobs/${id}`).then((v) => (v.status === "done" ? onDone(v) : onFailed(v)), (err) => {
        finish();
        fail(err, () => follow(id));
      });
    }
  });
}

// upload sends the form with XMLHttpRequest, which, unlike fetch, reports
// upload progress.
function upload(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/jobs");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) showProgress(0, `Uploading — ${Math.floor((100 * e.loaded) / e.total)}%`);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 401) {
        reject(tokenError());
      } else if (xhr.status === 202) {
        resolve(xhr.response);
      } else {
        const body = xhr.response;
        reject(new Error(body && body.error ? body.error : `The server answered ${xhr.status}.`));
      }
    });
    xhr.addEventListener("error", () => reject(new Error("The upload failed: the server could not be reached.")));
    xhr.send(form);
  });
}

async function convert() {
  const settings = $("settings");
  if (!settings.reportValidity()) return;
  showError("");
  $("result").hidden = true;
  $("video").removeAttribute("src");
  // Options first, then the images in the order the user arranged them.
  const form = new FormData();
  for (const [k, v] of new FormData(settings)) {
    if (v !== "") form.append(k, v.trim());
  }
  items.forEach((it) => form.append("files", it.file, it.file.name));
  job = { id: null, events: null };
  render();
  showProgress(0, "Uploading");
  try {
    const { id } = await upload(form);
    $("cancel").hidden = false;
    follow(id);
  } catch (err) {
    finish();
    $("progress-box").hidden = true;
    fail(err, convert);
  }
}

$("convert").addEventListener("click", convert);
$("cancel").addEventListener("click", async () => {
  if (!job || !job.id) return;
  const id = job.id;
  finish();
  showProgress(0, "Canceled.");
  try {
    await api(`/api/jobs/${id}`, { method: "DELETE" });
  } catch (err) {
    fail(err, () => api(`/api/jobs/${id}`, { method: "DELETE" }).catch((e) => showError(e.message)));
  }
});

// The interpolation model only matters with a factor above 1.
function syncInterp() {
  $("interp_model").closest(".field").classList.toggle("hint", Number($("interpolate").value) <= 1);
}
$("interpolate").addEventListener("input", syncInterp);

render();
syncInterp();
// loadModelsOrSay loads the model lists, asking for the token if needed.
function loadModelsOrSay() {
  loadModels().catch((err) => fail(err, loadModelsOrSay, "Could not load the models: "));
}
loadModelsOrSay();
