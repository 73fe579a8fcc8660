// The ecglab page: send the chosen files to /explain, show the labels, the probabilities and the figure.
"use strict";

const $ = (id) => document.getElementById(id);
let health = null;
let chosen = [];

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function loadHealth() {
  try {
    const response = await fetch("/health");
    health = await response.json();
    const mb = (health.max_upload_bytes / 1048576).toFixed(1);
    $("model").textContent = `model ${health.model} · ${health.classes.length} classes ` +
      `(${health.classes.join(", ")}) · ${health.leads.length} leads at ${health.fs} Hz · ` +
      `uploads up to ${mb} MB · ecglab ${health.version}`;
    $("token-field").hidden = !health.token_required;
  } catch (err) {
    showError(`The server does not answer (${err}); is ecglab serve running?`);
  }
}

function formFor(files, className) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  for (const id of ["fs", "leads", "units"]) {
    const value = $(id).value.trim();
    if (value) form.append(id, value);
  }
  if (className) form.append("class", className);
  return form;
}

async function explain(files, className) {
  clearError();
  if (!files.length) return;
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (health && total > health.max_upload_bytes) {
    showError(`${files.map((f) => f.name).join(", ")}: ${(total / 1048576).toFixed(1)} MB is more than ` +
      `this server accepts (${(health.max_upload_bytes / 1048576).toFixed(1)} MB).`);
    return;
  }
  const names = files.map((f) => f.name).join(" + ");
  $("status").textContent = `Scoring ${names}${className ? ` (explaining ${className})` : ""}…`;
  document.body.classList.add("busy");
  try {
    const token = $("token").value.trim();
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const response = await fetch("/explain", { method: "POST", body: formFor(files, className), headers });
    const body = await response.json().catch(() => ({ detail: `${response.status} ${response.statusText}` }));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      showError(files.some((f) => detail.includes(f.name)) ? detail : `${names}: ${detail}`);
      return;
    }
    render(body);
    $("status").textContent = "";
  } catch (err) {
    showError(`${names}: the upload failed (${err}).`);
  } finally {
    document.body.classList.remove("busy");
  }
}

function render(result) {
  const p = result.prediction;
  const classes = health ? health.classes : Object.keys(p.probabilities);
  const thresholds = health && health.thresholds;
  const rule = health && health.multilabel ? "0.5" : "highest";
  $("record").textContent = p.record;

  const labels = $("labels");
  labels.replaceChildren();
  for (const label of p.labels) {
    const chip = document.createElement("span");
    chip.className = "label";
    chip.textContent = `${label} ${(100 * p.probabilities[label]).toFixed(1)}%`;
    labels.append(chip);
  }
  if (!p.labels.length) labels.textContent = "no class reaches its threshold";

  $("warnings").hidden = !p.warnings.length;
  $("warnings").textContent = p.warnings.join("; ");

  const rows = classes.map((cls, i) => {
    const prob = p.probabilities[cls];
    const row = document.createElement("tr");
    if (p.labels.includes(cls)) row.className = "positive";
    if (cls === result.class) row.classList.add("explained");
    row.innerHTML = '<td class="name"></td><td><div class="prob"><span class="bar"><span></span></span>' +
      "<span></span></div></td><td></td><td></td><td></td>";
    const cells = row.children;
    cells[0].textContent = cls;
    cells[1].querySelector(".bar span").style.width = `${(100 * prob).toFixed(1)}%`;
    cells[1].firstElementChild.lastElementChild.textContent = prob.toFixed(3);
    cells[2].textContent = thresholds ? thresholds[i].toFixed(3) : rule;
    cells[3].textContent = p.labels.includes(cls) ? "yes" : "";
    const action = row.lastElementChild;
    if (cls === result.class) {
      action.textContent = "shown";
    } else {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "explain";
      button.addEventListener("click", () => explain(chosen, cls));
      action.append(button);
    }
    return row;
  });
  $("classes").tBodies[0].replaceChildren(...rows);

  $("figure").src = `data:${result.media_type};base64,${result.image}`;
  $("caption").textContent = `Shaded: where the model found evidence for ${result.class} ` +
    `(p = ${result.probability.toFixed(3)}; ${result.method}). 25 mm/s, 10 mm/mV.`;
  $("result").hidden = false;
}

function choose(fileList) {
  chosen = Array.from(fileList);
  $("result").hidden = true;
  explain(chosen, null);
}

function setup() {
  const zone = $("dropzone");
  $("files").addEventListener("change", (e) => choose(e.target.files));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    choose(e.dataTransfer.files);
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") $("files").click();
  });
  loadHealth();
}

document.addEventListener("DOMContentLoaded", setup);
