// The upload page: pick and order images, check them as they arrive, send
// them as one job, follow it (across a reload), then show and offer the
// video. No framework and no build step; the server's CSP allows only this
// file as script.
"use strict";

const $ = (id) => document.getElementById(id);
const naturalOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const imageTypes = /^image\/(jpeg|png|gif|bmp|tiff|webp)$/;
const imageNames = /\.(jpe?g|png|gif|bmp|tiff?|webp)$/i;
// Browsers decode these, so a thumbnail that fails to decode is a broken
// file; TIFF has no preview in most browsers and is left to the server.
const previewable = /\.(jpe?g|png|gif|bmp|webp)$/i;
const title = document.title;
// jobKey is where the running job's id is kept, so that a reload (or a
// closed and reopened tab) finds the job again.
const jobKey = "img2vid.job";

// items are the chosen images in video order:
// { file, url, id, state: "checking"|"ok"|"bad"|"nopreview", twin }, where
// twin is another item with exactly the same bytes, or null.
let items = [];
let nextID = 1;
// active is the id of the item that holds the list's one Tab stop.
let active = 0;
// removed holds the images of the last "Remove all", for Undo.
let removed = null;
// audio is the chosen soundtrack: { file, url, seconds, bad } or null.
let audio = null;
// job is the running job: { id, events, xhr } or null; busy from Convert
// until the job ends.
let job = null;
// retry repeats the request a missing token stopped, once one is saved.
let retry = null;

// announce tells screen reader users what a click or key just changed.
function announce(text) {
  $("announce").textContent = text;
}

function plural(n, one, many = one + "s") {
  return `${n} ${n === 1 ? one : many}`;
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
    const err = new Error(body && body.error ? body.error : `The server answered ${resp.status}.`);
    err.status = resp.status;
    throw err;
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
  $("files").focus(); // the token form is gone; focus must not fall to the page
  if (again) again();
});

// --- models ---

const modelInfo = new Map();

async function loadModels() {
  const data = await api("/api/models");
  const interp = $("interp_model");
  const selects = { interpolate: interp, frame: $("frame_model"), detect: $("detect_model") };
  interp.replaceChildren();
  $("frame_model").replaceChildren(new Option("None", "", true, true));
  $("detect_model").replaceChildren(new Option("None", "", true, true));
  for (const m of data.models) {
    // The option says only the name; the description goes in the hint
    // below, where it is not cut off.
    const opt = new Option(m.available ? m.name : `${m.name} (unavailable)`, m.name);
    opt.disabled = !m.available;
    modelInfo.set(`${m.kind}/${m.name}`, m);
    if (selects[m.kind]) selects[m.kind].append(opt);
  }
  if (!interp.options.length) interp.append(new Option("No smoothing model", ""));
  interp.disabled = !data.models.some((m) => m.kind === "interpolate" && m.available);
  // Preselect the server's default model, else the first usable one.
  const usable = [...interp.options].filter((o) => !o.disabled);
  const preferred = usable.find((o) => o.value === data.default_interp_model) || usable[0];
  if (preferred) preferred.selected = true;
  if (data.runtime) {
    const where = data.runtime.provider === "cuda" ? "the server's graphics card (GPU)" : "the server's processor (CPU)";
    $("runtime").textContent = `Models run on ${where}.`;
  }
  describeModels();
}

// describeModels puts the chosen models' descriptions in their hints.
function describeModels() {
  const say = (kind, select, hint, fallback) => {
    const m = modelInfo.get(`${kind}/${select.value}`);
    $(hint).textContent = m ? (m.available ? m.description || fallback : `Unavailable: ${m.reason}`) : fallback;
  };
  say("interpolate", $("interp_model"), "interp-hint", "Used when the smoothing factor is above 1.");
  say("frame", $("frame_model"), "frame-hint", "Run on every image, for example to sharpen or enlarge it.");
  say("detect", $("detect_model"), "detect-hint", "Draws a labelled box around each object it finds.");
  const d = modelInfo.get(`detect/${$("detect_model").value}`);
  $("detect-classes-hint").textContent = d && d.labels && d.labels.length
    ? `Comma-separated, from: ${d.labels.join(", ")}.`
    : "Comma-separated, for example person, dog.";
}
for (const id of ["interp_model", "frame_model", "detect_model"]) $(id).addEventListener("change", describeModels);

// --- options ---

// loadOptions reads the server's option table (GET /api/options) and makes
// the form follow it: bounds, allowed values and defaults come from the
// table, and an option the page has no field for gets a plain one under
// "More settings", so that every option the server takes is on the page.
async function loadOptions() {
  const data = await api("/api/options");
  for (const o of data.options) {
    const el = $(o.name) || addField(o);
    if (el.type === "number") {
      if (o.min !== undefined) el.min = o.min;
      if (o.max !== undefined) el.max = o.max;
      if (o.type === "integer") el.step = "1";
    }
    if (el.tagName === "SELECT" && o.enum) {
      for (const v of o.enum) if (![...el.options].some((opt) => opt.value === v)) el.append(new Option(v, v));
      // An empty choice is "not set" (the server's default), never a value of the table.
      for (const opt of [...el.options]) if (opt.value !== "" && !o.enum.includes(opt.value)) opt.remove();
    }
    // The server's default, unless the user has changed the field; a
    // number whose default is 0 ("automatic") stays empty.
    if (el.type === "checkbox") {
      if (el.checked === el.defaultChecked) el.checked = o.default === "true";
    } else if (el.tagName === "SELECT") {
      if (o.default && [...el.options].some((opt) => opt.value === o.default) && el.selectedIndex <= 0) el.value = o.default;
    } else if (el.value === el.defaultValue && !(o.default === "0" && el.placeholder)) {
      el.value = o.default;
    }
  }
  render();
}

// addField makes a plain field for an option the page does not know.
function addField(o) {
  const box = document.createElement("div");
  box.className = "field";
  const label = document.createElement("label");
  label.htmlFor = o.name;
  label.textContent = o.name.replaceAll("_", " ");
  let el;
  if (o.enum) {
    el = document.createElement("select");
    el.append(...o.enum.map((v) => new Option(v, v)));
  } else {
    el = document.createElement("input");
    el.type = o.type === "boolean" ? "checkbox" : o.type === "string" ? "text" : "number";
    if (el.type === "checkbox") el.value = "true";
    if (el.type === "number") el.step = o.type === "integer" ? "1" : "any";
  }
  el.id = o.name;
  el.name = o.name;
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.id = `${o.name}-usage`;
  hint.textContent = o.usage;
  el.setAttribute("aria-describedby", hint.id);
  if (el.type === "checkbox") {
    box.classList.add("check");
    box.append(el, label, hint);
  } else {
    box.append(label, el, hint);
  }
  $("more-fields").append(box);
  return el;
}

// --- images ---

// check decodes an item's thumbnail: a file the browser cannot decode is
// marked before anything is uploaded.
function check(it) {
  if (!previewable.test(it.file.name) && !/^image\/(jpeg|png|gif|bmp|webp)$/.test(it.file.type)) {
    it.state = "nopreview";
    return Promise.resolve();
  }
  const img = new Image();
  img.src = it.url;
  return img.decode().then(
    () => { it.state = "ok"; },
    () => { it.state = "bad"; },
  );
}

// sameBytes reports whether two files hold exactly the same bytes.
async function sameBytes(a, b) {
  if (a.size !== b.size) return false;
  const [x, y] = await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
  const u = new Uint8Array(x);
  const v = new Uint8Array(y);
  for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) return false;
  return true;
}

// findTwins pairs each new item with an image in the list that has the
// same bytes, if there is one; files are read only when sizes match.
async function findTwins(fresh) {
  for (const it of fresh) {
    for (const other of items) {
      if (other === it || other.file.size !== it.file.size) continue;
      if (await sameBytes(other.file, it.file)) {
        it.twin = other;
        if (!other.twin || !items.includes(other.twin)) other.twin = it;
        break;
      }
    }
  }
}

// merge puts the new items into the list in natural order without moving
// the ones already there: each goes before the first that sorts after it.
function merge(fresh) {
  const out = items.slice();
  for (const it of fresh) {
    const at = out.findIndex((o) => naturalOrder.compare(o.file.name, it.file.name) > 0);
    if (at < 0) out.push(it);
    else out.splice(at, 0, it);
  }
  return out;
}

let filesMessage = "";

async function addFiles(fileList) {
  if (job) return;
  const all = [...fileList];
  const fresh = all.filter((f) => imageTypes.test(f.type) || imageNames.test(f.name))
    .map((file) => ({ file, url: URL.createObjectURL(file), id: nextID++, state: "checking", twin: null }));
  const skipped = all.filter((f) => !(imageTypes.test(f.type) || imageNames.test(f.name))).map((f) => f.name);
  dropUndo();
  showError("");
  items = merge(fresh);
  if (items.length && !items.some((it) => it.id === active)) active = items[0].id; // the list's Tab stop
  render();
  await Promise.all(fresh.map(check));
  await findTwins(fresh);
  let note = `${plural(fresh.length, "image")} added.`;
  if (skipped.length) note += ` Skipped, not images: ${skipped.join(", ")}.`;
  filesMessage = skipped.length ? `Skipped, not images: ${skipped.join(", ")}.` : "";
  render();
  announce(note + " " + problems());
}

// problems describes the images that cannot go into a video as they are.
function problems() {
  const bad = items.filter((it) => it.state === "bad").map((it) => it.file.name);
  // Each pair once: the twin that comes first in the list names the other.
  const dups = items.filter((it) => it.twin && items.includes(it.twin) && items.indexOf(it.twin) > items.indexOf(it));
  let text = "";
  if (bad.length) text += `${bad.length === 1 ? "This file is" : "These files are"} not a readable image: ${bad.join(", ")}. Remove ${bad.length === 1 ? "it" : "them"} to convert. `;
  if (dups.length) text += `Exact duplicates: ${dups.map((it) => `${it.file.name} and ${it.twin.file.name}`).join("; ")}.`;
  return text.trim();
}

function indexOf(id) {
  return items.findIndex((it) => it.id === id);
}

function focusItem(id) {
  active = id;
  const li = $("thumbs").querySelector(`li[data-id="${id}"]`);
  for (const el of $("thumbs").children) el.tabIndex = el === li ? 0 : -1;
  if (li) li.focus();
}

function move(from, to) {
  if (job) return;
  const it = items[from];
  if (to < 0 || to >= items.length) {
    announce(`${it.file.name} is already ${to < 0 ? "first" : "last"}.`);
    return;
  }
  items.splice(from, 1);
  items.splice(to, 0, it);
  render();
  announce(`${it.file.name} is now image ${to + 1} of ${items.length}.`);
}

// removeAt removes one image; focus goes to its neighbour, or to the file
// chooser when the list is empty, never to the page.
function removeAt(i, refocus) {
  if (job) return;
  const [it] = items.splice(i, 1);
  URL.revokeObjectURL(it.url);
  for (const o of items) if (o.twin === it) o.twin = null;
  filesMessage = "";
  showError("");
  const next = items[Math.min(i, items.length - 1)];
  active = next ? next.id : 0;
  render();
  if (refocus) {
    if (next) focusItem(next.id);
    else $("files").focus();
  }
  announce(`${it.file.name} removed.`);
}

function toolButton(text, label, onClick, disabled) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.setAttribute("aria-label", label);
  b.disabled = disabled;
  // One Tab stop per image: the card has it, and its keys do what these
  // buttons do; the buttons are for the mouse and touch.
  b.tabIndex = -1;
  b.addEventListener("click", onClick);
  return b;
}

// render redraws the thumbnails and the state that depends on them.
function render() {
  const list = $("thumbs");
  const hadFocus = list.contains(document.activeElement);
  const locked = job !== null;
  list.replaceChildren();
  if (!items.some((it) => it.id === active)) active = items.length ? items[0].id : 0;
  items.forEach((it, i) => {
    const li = document.createElement("li");
    li.draggable = !locked;
    li.dataset.index = i;
    li.dataset.id = it.id;
    li.tabIndex = it.id === active ? 0 : -1;
    const flags = [];
    if (it.state === "bad") flags.push("not a readable image");
    if (it.twin && items.includes(it.twin)) flags.push(`same as image ${items.indexOf(it.twin) + 1}`);
    li.setAttribute("aria-label", `${it.file.name}, image ${i + 1} of ${items.length}${flags.length ? ", " + flags.join(", ") : ""}`);
    li.classList.toggle("bad", it.state === "bad");
    li.classList.toggle("dup", flags.length > 0 && it.state !== "bad");
    let thumb;
    if (it.state === "bad" || it.state === "nopreview") {
      thumb = document.createElement("span");
      thumb.className = "thumb placeholder";
      thumb.textContent = it.state === "bad" ? "Cannot be read" : "No preview";
    } else {
      thumb = document.createElement("img");
      thumb.className = "thumb";
      thumb.src = it.url;
      thumb.alt = "";
    }
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${i + 1}. ${it.file.name}`;
    li.append(thumb, name);
    if (flags.length) {
      const flag = document.createElement("span");
      flag.className = "flag";
      flag.textContent = flags.join("; ");
      li.append(flag);
    }
    const n = it.file.name;
    // Its caption, drawn under the picture in the video (the captions
    // fields, in the files' order).
    const cap = document.createElement("input");
    cap.type = "text";
    cap.className = "caption";
    cap.maxLength = 200;
    cap.value = it.caption || "";
    cap.placeholder = "Caption";
    cap.setAttribute("aria-label", `Caption of ${n}`);
    cap.disabled = locked;
    cap.tabIndex = -1; // reached from its card with Enter, as the list keeps one Tab stop
    cap.addEventListener("input", () => { it.caption = cap.value; });
    // Its own time on screen (the durations fields; empty: the job's).
    const dur = document.createElement("input");
    dur.type = "text";
    dur.className = "duration";
    dur.inputMode = "decimal";
    dur.value = it.seconds || "";
    dur.placeholder = "Time";
    dur.setAttribute("aria-label", `Time of ${n} on screen, such as 3s`);
    dur.disabled = locked;
    dur.tabIndex = -1;
    dur.toggleAttribute("aria-invalid", durationSeconds(dur.value) === null);
    dur.addEventListener("input", () => {
      it.seconds = dur.value;
      dur.toggleAttribute("aria-invalid", durationSeconds(dur.value) === null);
      preview();
    });
    // Within a card: Tab and Shift+Tab between its caption and its time,
    // Enter or Escape back to the card.
    for (const [el, other] of [[cap, dur], [dur, cap]]) {
      el.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === "Escape") {
          e.preventDefault();
          focusItem(it.id);
        } else if (e.key === "Tab" && !e.shiftKey === (el === cap)) {
          e.preventDefault();
          other.focus();
        }
      });
    }
    const fields = document.createElement("div");
    fields.className = "card-fields";
    fields.append(cap, dur);
    li.append(fields);
    const tools = document.createElement("div");
    tools.className = "tools";
    tools.append(
      toolButton("◀", `Move ${n} earlier`, () => { move(i, i - 1); focusItem(it.id); }, locked || i === 0),
      toolButton("▶", `Move ${n} later`, () => { move(i, i + 1); focusItem(it.id); }, locked || i === items.length - 1),
      toolButton("✕", `Remove ${n}`, () => removeAt(i, true), locked),
    );
    li.append(tools);
    list.append(li);
  });
  if (hadFocus && items.length) focusItem(active);
  const checking = items.some((it) => it.state === "checking");
  $("count").textContent = items.length
    ? `${plural(items.length, "image")}, in video order${checking ? " (checking…)" : ""}.`
    : "No images yet. They are sorted by name (frame_2 before frame_10).";
  const note = [filesMessage, problems()].filter(Boolean).join(" ");
  $("files-note").textContent = note;
  $("files-note").hidden = !note;
  $("keys").hidden = items.length === 0;
  $("clear").hidden = items.length === 0;
  $("clear").disabled = locked;
  $("files").disabled = locked;
  $("drop").classList.toggle("locked", locked);
  $("settings-set").disabled = locked;
  $("audio-clear").hidden = !audio;
  $("audio-name").hidden = !audio;
  if (audio) {
    $("audio-name").textContent = audio.bad
      ? `${audio.file.name}: not a sound file that can be read`
      : `${audio.file.name}${audio.seconds ? ` (${seconds(audio.seconds)})` : ""}`;
  }
  $("convert").disabled = items.length === 0 || locked || checking;
  preview();
}

// The list's keys: arrows move the focus, Alt+arrows move the image,
// Home/End jump, Delete removes.
$("thumbs").addEventListener("keydown", (e) => {
  const li = e.target.closest("li");
  if (!li || e.target !== li) return;
  const i = Number(li.dataset.index);
  const id = Number(li.dataset.id);
  const back = e.key === "ArrowLeft" || e.key === "ArrowUp";
  const fwd = e.key === "ArrowRight" || e.key === "ArrowDown";
  if ((back || fwd) && e.altKey) {
    e.preventDefault();
    move(i, back ? i - 1 : i + 1);
    focusItem(id);
  } else if (back || fwd) {
    e.preventDefault();
    const to = items[Math.max(0, Math.min(items.length - 1, back ? i - 1 : i + 1))];
    focusItem(to.id);
  } else if (e.key === "Home" || e.key === "End") {
    e.preventDefault();
    focusItem(items[e.key === "Home" ? 0 : items.length - 1].id);
  } else if (e.key === "Delete" || e.key === "Backspace") {
    e.preventDefault();
    removeAt(i, true);
  } else if (e.key === "Enter" || e.key === "F2") {
    const cap = li.querySelector("input.caption");
    if (cap && !cap.disabled) {
      e.preventDefault();
      cap.focus();
    }
  }
});
$("thumbs").addEventListener("focusin", (e) => {
  const li = e.target.closest("li");
  if (li && e.target === li) active = Number(li.dataset.id);
});

// Dragging a thumbnail onto another moves it there.
let dragFrom = -1;
$("thumbs").addEventListener("dragstart", (e) => {
  const li = e.target.closest("li");
  if (!li || job) return;
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

// Remove all keeps the images until the next change, so Undo can bring
// them back; focus goes to Undo, which takes the button's place.
function dropUndo() {
  if (removed) removed.forEach((it) => URL.revokeObjectURL(it.url));
  removed = null;
  $("undo-box").hidden = true;
}
$("clear").addEventListener("click", () => {
  if (job) return;
  dropUndo();
  removed = items;
  items = [];
  filesMessage = "";
  showError("");
  render();
  $("undo-text").textContent = `${plural(removed.length, "image")} removed.`;
  $("undo-box").hidden = false;
  $("undo").focus();
  announce(`All images removed. Undo brings them back.`);
});
$("undo").addEventListener("click", () => {
  items = removed.concat(items);
  removed = null;
  $("undo-box").hidden = true;
  render();
  focusItem(items[0].id);
  announce(`${plural(items.length, "image")} back.`);
});

const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (e) => {
    if (dragFrom >= 0 || job) return;
    e.preventDefault();
    drop.classList.add("over");
  });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => {
  if (dragFrom >= 0 || job) return;
  e.preventDefault();
  addFiles(e.dataTransfer.files);
});

// --- soundtrack ---

$("audio").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (!file) return;
  if (audio) URL.revokeObjectURL(audio.url);
  audio = { file, url: URL.createObjectURL(file), seconds: 0, bad: false };
  const a = new Audio();
  const it = audio;
  a.preload = "metadata";
  a.addEventListener("loadedmetadata", () => {
    it.seconds = Number.isFinite(a.duration) ? a.duration : 0;
    render();
  });
  a.addEventListener("error", () => {
    // Some formats only the server's decoder reads; it has the last word.
    it.bad = !/\.(flac|opus|oga|ogg|m4a|aac)$/i.test(file.name) || file.size === 0;
    render();
  });
  a.src = audio.url;
  showError("");
  render();
});
$("audio-clear").addEventListener("click", () => {
  URL.revokeObjectURL(audio.url);
  audio = null;
  render();
  $("audio").focus();
  announce("Soundtrack removed.");
});

// --- settings ---

// parseSize applies the server's size rule (img2vid.ParseSize): digits,
// x (or X or ×), digits, spaces allowed around each part; null otherwise.
function parseSize(text) {
  const s = text.toLowerCase().replaceAll("×", "x");
  const at = s.indexOf("x");
  if (at < 0) return null;
  const side = (t) => (/^\d{1,9}$/.test(t.trim()) ? Number(t.trim()) : -1);
  const w = side(s.slice(0, at));
  const h = side(s.slice(at + 1));
  return w > 0 && h > 0 ? { w, h } : null;
}

// durationSeconds reads a time as the server's duration options do (3s,
// 1.5s, 500ms) in seconds: 0 for "", null when it is not one.
function durationSeconds(text) {
  if (text.trim() === "") return 0;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$/.exec(text);
  return m ? Number(m[1]) / (m[2] === "ms" ? 1000 : 1) : null;
}

// labelOf is the text of a field's label, for messages.
function labelOf(el) {
  const label = document.querySelector(`label[for="${el.id}"]`);
  return label ? label.firstChild.textContent.trim() : el.name;
}

// value is the text a field sends; "" sends nothing, which the server
// reads as the option's default.
function value(id) {
  return $(id).value.trim();
}

// settingsProblem returns the first setting the server would refuse, as
// { field, text }, or null. Bounds are the fields' min and max, which
// loadOptions sets from the server's option table.
function settingsProblem() {
  for (const el of $("settings").querySelectorAll("input[type=number]")) {
    const text = el.value.trim();
    if (text === "") {
      if (el.required) return { field: el.id, text: `${labelOf(el)}: enter a number.` };
      continue;
    }
    const v = Number(text);
    const whole = el.step === "1";
    const lo = el.min === "" ? -Infinity : Number(el.min);
    const hi = el.max === "" ? Infinity : Number(el.max);
    if (!Number.isFinite(v) || (whole && !Number.isInteger(v)) || v < lo || v > hi) {
      return { field: el.id, text: `${labelOf(el)} must be ${whole ? "a whole number " : ""}from ${el.min} to ${el.max}, not ${text}.` };
    }
  }
  const fps = Number(value("fps"));
  const interp = Number(value("interpolate") || 1);
  const fpsOut = Number(value("fps_out") || 0);
  const fpsMin = Number($("fps").min) || 0;
  const fpsMax = Number($("fps").max) || Infinity;
  const size = value("size");
  if (size !== "" && size.toLowerCase() !== "original" && !parseSize(size)) return { field: "size", text: `Size must look like 1280x720 (width x height) or be "original", not "${size}".` };
  const secs = (id) => durationSeconds(value(id));
  if (secs("duration") === null) return { field: "duration", text: `${labelOf($("duration"))} must be a time such as 3s or 500ms, not "${value("duration")}".` };
  if (secs("transition_duration") === null) return { field: "transition_duration", text: `${labelOf($("transition_duration"))} must be a time such as 0.5s, not "${value("transition_duration")}".` };
  if (value("duration") !== "" && interp > 1) return { field: "duration", text: `${labelOf($("duration"))} is for slideshows; with smoothing, set images per second instead.` };
  if ($("motion").value !== "none" && interp > 1) return { field: "motion", text: `${labelOf($("motion"))} moves still photos of a slideshow; it does not go with smoothing.` };
  if ($("motion").value !== "none") {
    const f = value("motion_focus");
    const pt = /^\s*(\d*\.?\d+)\s*,\s*(\d*\.?\d+)\s*$/.exec(f);
    if (f !== "" && f !== "center" && f !== "detect" && !(pt && Number(pt[1]) <= 1 && Number(pt[2]) <= 1)) {
      return { field: "motion_focus", text: `${labelOf($("motion_focus"))} must be center, detect or x,y from 0 to 1 (0.3,0.6), not "${f}".` };
    }
    if (f === "detect" && !value("detect_model")) return { field: "motion_focus", text: `${labelOf($("motion_focus"))} detect needs an object detection model.` };
  }
  if ($("transition").value !== "none" && interp <= 1) {
    const each = secs("duration") || 1 / fps;
    const trans = value("transition_duration") === "" ? 0.5 : secs("transition_duration");
    if (trans >= each) return { field: "transition_duration", text: `${labelOf($("transition_duration"))} (${trans} s) must be shorter than each image's time (${each} s).` };
  }
  if (size !== "" && $("aspect").value !== "") return { field: "aspect", text: `${labelOf($("aspect"))} and ${labelOf($("size"))} cannot both be set: a size fixes the shape already.` };
  if (fpsOut > 0 && fpsOut < fpsMin) return { field: "fps_out", text: `${labelOf($("fps_out"))} must be empty (automatic) or at least ${fpsMin}.` };
  if ((fpsOut || fps * interp) > fpsMax) return { field: "interpolate", text: `Images per second x smoothing makes ${fps * interp} frames per second, above ${fpsMax}; lower one, or set slow motion.` };
  if (audio && $("format").value === "gif") return { field: "format", text: "A GIF cannot carry sound: choose MP4 or WebM, or remove the soundtrack." };
  if (audio && audio.bad) return { field: "audio", text: `${audio.file.name} is not a sound file that can be read.` };
  if (!value("detect_model")) {
    const set = ["detect_score", "detect_iou", "detect_classes"].find((id) => value(id) !== "" && value(id) !== "0");
    if (set) return { field: set, text: `${labelOf($(set))} needs an object detection model.` };
  }
  return null;
}

// markSettings shows the first problem beside the settings and marks its
// field; with nothing wrong it clears both.
function markSettings() {
  const p = settingsProblem();
  for (const el of $("settings").querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  $("settings-error").textContent = p ? p.text : "";
  $("settings-error").hidden = !p;
  if (p) $(p.field).setAttribute("aria-invalid", "true");
  return p;
}

function seconds(s) {
  return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
}

// preview says what the settings will make of the images: "12 images at
// 4/s, x2 = 3.0 s, 24 frames".
function preview() {
  const n = items.length;
  const fps = Number(value("fps"));
  const interp = Number(value("interpolate")) || 1;
  const fpsOut = Number(value("fps_out")) || fps * interp;
  if (!n || !(fps > 0) || settingsProblem()) {
    $("preview").textContent = n ? "" : "Add images to see how long the video will be.";
    return;
  }
  // A slideshow (a time per image or a transition, no smoothing) shows
  // each image for its time at fps_out, 30 by default; fps_out without
  // smoothing otherwise converts the rate: the images keep their pace and
  // the frames at fps_out cover them (img2vid.Options.OutputFrames).
  const fpsOutSet = Number(value("fps_out")) > 0;
  // audio_fit spread: each image's time is the sound's length over them.
  const spread = audio && audio.seconds > 0 && $("audio_fit").value === "spread" && interp <= 1;
  const each = spread ? audio.seconds / n : durationSeconds(value("duration"));
  const own = items.map((it) => durationSeconds(it.seconds || "") || 0);
  const slideshow = interp <= 1 && (each > 0 || own.some((s) => s > 0) || $("transition").value !== "none" || $("motion").value !== "none");
  const resamples = fpsOutSet && interp <= 1 && fpsOut !== fps && !slideshow;
  let text = `${plural(n, "image")} at ${+fps.toFixed(3)}/s`;
  let frames = resamples ? Math.ceil(n * fpsOut / fps - 1e-9) : n * interp;
  let rate = fpsOut;
  if (slideshow) {
    rate = fpsOutSet ? Number(value("fps_out")) : 30;
    const times = own.map((s) => (spread ? each : s || each || 1 / fps));
    frames = Math.round(times.reduce((a, b) => a + b, 0) * rate);
    text = own.some((s) => s > 0) && !spread
      ? `${plural(n, "image")}, each for its own time, at ${rate} frames/s`
      : `${plural(n, "image")}, ${seconds(each || 1 / fps)} each, at ${rate} frames/s`;
  } else {
    if (interp > 1) text += `, x${interp}`;
    if (fpsOutSet) text += `, ${resamples ? "converted to" : "played at"} ${+fpsOut.toFixed(3)} frames/s`;
  }
  let length = frames / rate;
  if (audio && audio.seconds > 0 && $("audio_fit").value === "extend" && audio.seconds > length) {
    frames = Math.ceil(audio.seconds * rate - 1e-6);
    length = frames / rate;
    text += `, held for the ${seconds(audio.seconds)} sound`;
  }
  text += ` = ${seconds(length)}, ${plural(frames, "frame")}`;
  if (audio) text += `, with sound`;
  $("preview").textContent = text + ".";
}

$("settings").addEventListener("input", () => {
  showError("");
  render();
  if ($("settings-error").textContent) markSettings();
});
$("settings").addEventListener("change", () => {
  markSettings();
  preview();
});
// Enter in a field converts, as in any form, instead of reloading the page.
$("settings").addEventListener("submit", (e) => {
  e.preventDefault();
  convert();
});

// --- conversion ---

function formatTime(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

function formatBytes(n) {
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const stageNames = { queued: "Waiting in the queue", decode: "Reading images", encode: "Making the video", done: "Done" };

// keepInView is set while the status should stay in view: from Convert
// until the user scrolls the page themselves.
let keepInView = false;
for (const name of ["wheel", "touchmove"]) window.addEventListener(name, () => { keepInView = false; }, { passive: true });
window.addEventListener("keydown", (e) => {
  if (["PageUp", "PageDown", "Home", "End", " "].includes(e.key) && e.target === document.body) keepInView = false;
});

function showProgress(percent, text) {
  $("progress-box").hidden = false;
  if (keepInView) {
    const r = $("progress-box").getBoundingClientRect();
    if (r.top < 0 || r.bottom > innerHeight) $("progress-box").scrollIntoView({ block: "nearest" });
  }
  $("bar").value = percent;
  $("bar").setAttribute("aria-valuetext", `${Math.round(percent)}%`);
  $("status").textContent = text;
  document.title = `${Math.floor(percent)}% · ${title}`;
}

function onJob(view) {
  const p = view.progress || {};
  const percent = p.total ? (100 * p.done) / p.total : 0;
  let text = stageNames[p.stage] || p.stage || "";
  if (p.total) text += ` — ${p.done} of ${p.total} frames (${Math.floor(percent)}%)`;
  if (p.eta_ms) text += `, about ${formatTime(p.eta_ms)} left`;
  showProgress(percent, text);
}

// finish ends the page's part in a job: the stream closes, the inputs
// unlock. keep leaves the job's id stored, so a reload shows its result.
function finish(keep) {
  keepInView = false;
  if (job && job.events) job.events.close();
  job = null;
  if (!keep) localStorage.removeItem(jobKey);
  $("cancel").hidden = true;
  render();
}

// focusNext puts the focus where the next step starts once a job is
// canceled: Convert again, or, with no images (a job found after a
// reload), the file chooser.
function focusNext() {
  ($("convert").disabled ? $("files") : $("convert")).focus();
}

// reveal brings el into view and gives it the focus, so that what just
// happened is where the eyes and the screen reader are.
function reveal(el) {
  el.scrollIntoView({ block: "nearest" });
  el.focus({ preventScroll: true });
}

function detail(dl, term, value) {
  if (!value) return;
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
}

function onDone(view) {
  finish(true);
  const r = view.result;
  showProgress(100, `Done — your ${r.format.toUpperCase()} is ready below.`);
  document.title = `Done · ${title}`;
  $("progress-box").hidden = true;
  const gif = r.format === "gif";
  $("video").hidden = gif;
  $("gif").hidden = !gif;
  if (gif) {
    $("video").removeAttribute("src");
    $("gif").src = view.video;
  } else {
    $("gif").removeAttribute("src");
    $("video").src = view.video;
  }
  const dl = $("details");
  dl.replaceChildren();
  let made = `${plural(r.inputs, "image")} became ${plural(r.frames, "frame")} at ${+r.fps.toFixed(3)} frames per second`;
  if (r.duplicates) made += `; ${plural(r.duplicates, "repeated image")}`;
  detail(dl, "Length", seconds(r.duration_s));
  detail(dl, "Frames", made);
  detail(dl, "Resolution", `${r.width} x ${r.height}`);
  detail(dl, "File size", r.bytes ? `${formatBytes(r.bytes)} (${r.format.toUpperCase()})` : r.format.toUpperCase());
  const models = [r.interp_model && `${r.interp_model} (smoothing)`, r.frame_model && `${r.frame_model} (every image)`,
    r.detections && `${r.detections.model} (detection)`].filter(Boolean);
  detail(dl, "Models used", models.length ? models.join(", ") : "none");
  if (r.audio_s) detail(dl, "Sound", seconds(r.audio_s));
  detail(dl, "Time taken", r.elapsed_ms ? formatTime(Math.max(r.elapsed_ms, 1000)) : "");
  // The server names the download after the first image; the link says
  // so when the page still knows that image (not after a reload).
  $("download").href = `${view.video}?download=1`;
  const name = items.length ? downloadName(items[0].file.name) : "";
  $("download").textContent = name ? `Download ${name}.${r.format}` : `Download the ${r.format.toUpperCase()}`;
  showDetections(view); // detect.js
  $("result").hidden = false;
  reveal($("result-title"));
  announce("The video is ready.");
}

// downloadName is the server's download name for a first image called
// file (server.downloadName): "Beach Day.JPG" gives "Beach_Day".
function downloadName(file) {
  let out = "";
  for (const ch of file.replace(/^.*[\\/]/, "").replace(/\.[^.]*$/, "")) {
    if (/[A-Za-z0-9._-]/.test(ch)) out += ch;
    else if (ch === " " && out) out += "_";
    if (out.length >= 60) break;
  }
  return out.replace(/^[._]+|[._]+$/g, "");
}

function onFailed(view) {
  const canceled = view.status === "canceled";
  finish(false);
  $("progress-box").hidden = true;
  document.title = title;
  showError(canceled ? "The job was canceled." : view.error ? view.error.error : "The job failed.");
  reveal($("error"));
}

function follow(id) {
  const events = new EventSource(`/api/jobs/${id}/events`);
  job = { id, events, xhr: null };
  $("cancel").hidden = false;
  render();
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
        finish(false);
        fail(err, () => follow(id));
      });
    }
  });
}

// upload sends the form with XMLHttpRequest, which, unlike fetch, reports
// upload progress and can be aborted mid-upload.
function upload(form) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    job.xhr = xhr;
    xhr.open("POST", "/api/jobs");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && job && job.xhr === xhr) {
        const pc = (100 * e.loaded) / e.total;
        showProgress(pc, `Uploading — ${Math.floor(pc)}% (${formatBytes(e.loaded)} of ${formatBytes(e.total)})`);
      }
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
    xhr.addEventListener("abort", () => {
      const err = new Error("The upload was canceled.");
      err.aborted = true;
      reject(err);
    });
    xhr.addEventListener("error", () => reject(new Error("The upload failed: the server could not be reached.")));
    xhr.send(form);
  });
}

async function convert() {
  if (job) return;
  const bad = items.filter((it) => it.state === "bad");
  if (bad.length) {
    render();
    reveal($("thumbs").querySelector("li.bad"));
    return;
  }
  const p = markSettings();
  if (p) {
    $(p.field).focus();
    return;
  }
  const late = items.find((it) => durationSeconds(it.seconds || "") === null);
  if (late) {
    showError(`The time of ${late.file.name} must be a time such as 3s or 500ms, not "${late.seconds}".`);
    reveal($("thumbs").querySelector(`li[data-id="${late.id}"]`));
    return;
  }
  showError("");
  dropUndo();
  $("result").hidden = true;
  $("detections").hidden = true;
  $("video").removeAttribute("src");
  $("gif").removeAttribute("src");
  // Options first, then the images in the order the user arranged them,
  // then the soundtrack.
  const form = new FormData();
  for (const [k, v] of new FormData($("settings"))) {
    if (typeof v === "string" && v.trim() !== "") form.append(k, v.trim());
  }
  items.forEach((it) => form.append("files", it.file, it.file.name));
  if (items.some((it) => (it.caption || "").trim() !== "")) items.forEach((it) => form.append("captions", (it.caption || "").trim()));
  if (items.some((it) => (it.seconds || "").trim() !== "")) items.forEach((it) => form.append("durations", (it.seconds || "").trim()));
  if (audio) form.append("audio", audio.file, audio.file.name);
  localStorage.removeItem(jobKey);
  job = { id: null, events: null, xhr: null };
  render();
  $("cancel").hidden = false;
  // Convert is now disabled; the focus goes to Cancel, the one thing to
  // do while the job runs, and the progress comes into view.
  $("cancel").focus({ preventScroll: true });
  keepInView = true;
  showProgress(0, "Uploading");
  try {
    const { id } = await upload(form);
    localStorage.setItem(jobKey, id);
    follow(id);
  } catch (err) {
    finish(false);
    $("progress-box").hidden = true;
    document.title = title;
    if (err.aborted) {
      announce("Canceled.");
      focusNext();
      return;
    }
    fail(err, convert);
    if (!err.needsToken) {
      // A refusal that starts with a field's name ("size must ...") marks
      // that field too.
      const field = /^(\w+) /.exec(err.message);
      const el = field && $(field[1]);
      if (el && $("settings").contains(el)) el.setAttribute("aria-invalid", "true");
      reveal($("error"));
    }
  }
}

$("convert").addEventListener("click", convert);
$("cancel").addEventListener("click", async () => {
  if (!job) return;
  if (job.xhr && !job.id) {
    job.xhr.abort(); // convert() puts the page back
    return;
  }
  const id = job.id;
  finish(false);
  $("progress-box").hidden = true;
  document.title = title;
  announce("Canceled.");
  focusNext();
  try {
    await api(`/api/jobs/${id}`, { method: "DELETE" });
  } catch (err) {
    fail(err, () => api(`/api/jobs/${id}`, { method: "DELETE" }).catch((e) => showError(e.message)));
  }
});

// Leaving mid-job would lose the upload or the page's hold on the job.
window.addEventListener("beforeunload", (e) => {
  if (job) {
    e.preventDefault();
    e.returnValue = "";
  }
});

// resume finds the job a reload (or a closed tab) left, and shows its
// progress or its outcome.
async function resume() {
  const id = localStorage.getItem(jobKey);
  if (!id) return;
  let v;
  try {
    v = await api(`/api/jobs/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.needsToken) askToken(resume);
    else localStorage.removeItem(jobKey); // expired or gone: nothing to show
    return;
  }
  if (v.status === "done") {
    onDone(v);
  } else if (v.status === "failed" || v.status === "canceled") {
    localStorage.removeItem(jobKey);
  } else {
    keepInView = true;
    onJob(v);
    follow(id);
    $("cancel").focus({ preventScroll: true });
    announce("Your conversion is still running.");
  }
}

// The smoothing model only matters with a factor above 1.
function syncInterp() {
  $("interp_model").closest(".field").classList.toggle("inactive", Number($("interpolate").value) <= 1);
}
$("interpolate").addEventListener("input", syncInterp);

render();
syncInterp();
// loadModelsOrSay loads the model lists and the option table, asking for
// the token if needed.
function loadModelsOrSay() {
  loadModels().catch((err) => fail(err, loadModelsOrSay, "Could not load the models: "));
  loadOptions().catch((err) => { if (!err.needsToken) showError(`Could not load the options: ${err.message}`); });
}
loadModelsOrSay();
resume();
