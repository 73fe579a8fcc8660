// The in-browser page: read the chosen records, score them with ONNX Runtime Web, show each result.
// Nothing about a record leaves the page; the server only hands out the page, the runtime and the models.
import { RecordError } from "./errors.js";
import { decide, prepare, probabilities, windows } from "./pipeline.js";
import { readRecords } from "./records.js";
import { createSession } from "./runtime.js";

const $ = (id) => document.getElementById(id);
const sessions = new Map();
let catalog = null; // the server's /models answer

function headers() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function loadModels() {
  const response = await fetch("/models", { headers: headers() });
  if (response.status === 401) {
    $("token-field").hidden = false;
    $("model-line").textContent = "this server asks for its access token before it hands out its models";
    return;
  }
  const answer = await response.json();
  if (!response.ok || !answer.models.length) {
    showErrors([["", answer.detail || "this server has no model the page can run; start it with --model FOLDER"]]);
    return;
  }
  catalog = answer;
  if (catalog.runtime_missing) showErrors([["", catalog.runtime_missing]]);
  $("model").replaceChildren(...catalog.models.map((m) => {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.lead_names.length} lead${m.lead_names.length > 1 ? "s" : ""}, ` +
      `${m.classes.length} classes)`;
    option.selected = m.name === catalog.default;
    return option;
  }));
  describeModel();
}

function describeModel() {
  const m = model($("model").value);
  $("model-line").textContent = `model ${m.name} · ${m.classes.length} classes (${m.classes.join(", ")}) · ` +
    `${m.lead_names.length} leads at ${m.fs} Hz · ${m.window_samples / m.fs}-s windows · scored in this browser`;
}

function model(name) {
  return catalog.models.find((m) => m.name === name);
}

// The model for a record: the chosen one, or a single-lead model for a one-lead record the chosen one can't read.
function modelFor(rec) {
  const chosen = model($("model").value);
  if (rec.leadNames.length !== 1 || chosen.lead_names.length === 1) return chosen;
  return model(catalog.single_lead) || catalog.models.find((m) => m.lead_names.length === 1) || chosen;
}

async function session(m) {
  if (!sessions.has(m.name)) {
    sessions.set(m.name, (async () => {
      const response = await fetch(m.onnx, { headers: headers() });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error(`model ${m.name}: ${body.detail || `${response.status} ${response.statusText}`}`);
      }
      return createSession(new Uint8Array(await response.arrayBuffer()));
    })());
  }
  try {
    return await sessions.get(m.name);
  } catch (error) {
    sessions.delete(m.name);
    throw error;
  }
}

async function score(name, rec) {
  const m = modelFor(rec);
  if (m.filter !== "none") {
    throw new RecordError(name, `model ${m.name} filters its input ('${m.filter}'), which this page does not do; ` +
      "score it with `ecglab predict` or the server's own page");
  }
  const { x, notes } = prepare(name, rec, m, catalog.limits);
  const { data, count } = windows(x, m.window_samples);
  const logits = await (await session(m)).run(data, count, m.lead_names.length, m.window_samples);
  const probs = probabilities(logits, count, m.classes.length, m);
  return { record: name, model: m, probabilities: probs, labels: decide(probs, m), windows: count, warnings: notes };
}

function options() {
  const leads = $("leads").value.split(",").map((t) => t.trim()).filter(Boolean);
  return { fs: Number($("fs").value) || null, leads: leads.length ? leads : null, units: $("units").value || null };
}

function showErrors(messages) {
  $("errors").replaceChildren(...messages.map(([file, text]) => {
    const item = document.createElement("li");
    item.dataset.file = file;
    item.textContent = text;
    return item;
  }));
  $("errors").hidden = !messages.length;
}

function render(result) {
  const section = document.createElement("section");
  section.className = "record";
  section.dataset.record = result.record;
  section.dataset.model = result.model.name;
  const title = document.createElement("h2");
  title.textContent = `${result.record} · ${result.model.name} · ${result.windows} window(s)`;
  const labels = document.createElement("p");
  labels.className = "labels";
  labels.textContent = result.labels.length ? result.labels.join(", ") : "no class reaches its threshold";
  section.append(title, labels);
  if (result.warnings.length) {
    const warn = document.createElement("p");
    warn.className = "warning";
    warn.textContent = result.warnings.join("; ");
    section.append(warn);
  }
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>class</th><th>probability</th><th>threshold</th><th>decision</th></tr></thead>";
  const body = document.createElement("tbody");
  result.model.classes.forEach((cls, i) => {
    const row = body.insertRow();
    row.dataset.class = cls;
    row.dataset.probability = String(result.probabilities[i]);
    if (result.labels.includes(cls)) row.className = "positive";
    const t = result.model.thresholds;
    const cells = [cls, result.probabilities[i].toFixed(3), t ? t[i].toFixed(3) : (result.model.multilabel ? "0.5" : "highest"),
      result.labels.includes(cls) ? "yes" : ""];
    for (const text of cells) row.insertCell().textContent = text;
  });
  table.append(body);
  section.append(table);
  return section;
}

async function choose(files) {
  if (!catalog) {
    showErrors([["", $("token-field").hidden ? "the models are not loaded yet; reload the page"
      : "enter this server's access token first"]]);
    return;
  }
  $("results").replaceChildren();
  document.body.classList.add("busy");
  const errors = [];
  try {
    $("status").textContent = "Reading the records in this page…";
    for (const item of await readRecords(files, options(), catalog.limits)) {
      if (item.error) {
        errors.push([item.name, item.error.message]);
        continue;
      }
      $("status").textContent = `Scoring ${item.name} in this page…`;
      try {
        $("results").append(render(await score(item.name, item.rec)));
      } catch (error) {
        errors.push([item.name, error instanceof RecordError ? error.message : `${item.name}: ${error.message}`]);
      }
    }
  } finally {
    showErrors(errors);
    $("status").textContent = `${$("results").children.length} record(s) scored in this browser`;
    document.body.classList.remove("busy");
  }
}

function setup() {
  const zone = $("dropzone");
  $("files").addEventListener("change", (e) => choose(Array.from(e.target.files)));
  $("model").addEventListener("change", describeModel);
  $("token").addEventListener("change", () => loadModels());
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    choose(Array.from(e.dataTransfer.files));
  });
  loadModels().catch((error) => showErrors([["", `The server does not answer (${error}); is ecglab serve running?`]]));
}

setup();
