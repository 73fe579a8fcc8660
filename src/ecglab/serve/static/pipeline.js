// A record scored as `ecglab.infer.predictor.Predictor` scores it: the model's leads in its order,
// resampled to its rate, zero-padded at both ends when shorter than one window, cut into windows
// with stride = window (the last ending at the record's end), each window z-scored per lead; the
// network's outputs become probabilities (sigmoid for multi-label, softmax otherwise), averaged or
// max-ed over windows, and classes at or above their thresholds are the labels.
import { RecordError, g } from "./errors.js";
import { leadKey } from "./leads.js";
import { qualityWarnings } from "./quality.js";
import { resample } from "./resample.js";

const MIN_SECONDS = 1.0;
const EPS = 1e-6;

// The record's leads in the order of `target`; a RecordError naming every lead the file lacks.
export function selectLeads(file, rec, target) {
  const found = new Map();
  rec.leadNames.forEach((name, i) => {
    const key = leadKey(name);
    if (key === null) return;
    if (found.has(key)) throw new RecordError(file, `two signals are lead ${key} (${rec.leadNames.join(", ")})`);
    found.set(key, i);
  });
  const keys = target.map((t) => leadKey(t) ?? t);
  const missing = target.filter((_, i) => !found.has(keys[i]));
  if (missing.length) {
    throw new RecordError(file, `the model needs lead(s) ${missing.join(", ")}, which the file lacks ` +
      `(it has ${rec.leadNames.join(", ")}); use a model trained on the leads you have`);
  }
  return keys.map((k) => rec.x[found.get(k)]);
}

function checkResample(file, fsIn, fsOut, limits) {
  const factor = Math.max(fsIn / fsOut, fsOut / fsIn);
  if (factor > limits.max_resample) {
    throw new RecordError(file, `resampling ${g(fsIn)} Hz to the model's ${g(fsOut)} Hz is a factor of ${g(factor)}, ` +
      `over the limit of ${g(limits.max_resample)}; use a model trained nearer that rate or set ECGLAB_MAX_RESAMPLE`);
  }
}

// The leads as the model sees them before windowing, and any warnings (Predictor.prepare).
export function prepare(file, rec, model, limits) {
  const picked = selectLeads(file, rec, model.lead_names);
  checkResample(file, rec.fs, model.fs, limits);
  const notes = qualityWarnings(file, picked, model.lead_names);
  let x = resample(picked, rec.fs, model.fs);
  const length = x[0].length;
  const n = model.window_samples;
  const seconds = length / model.fs;
  if (seconds < MIN_SECONDS) {
    throw new RecordError(file, `only ${seconds.toFixed(2)} s long; the model needs at least ${g(MIN_SECONDS)} s`);
  }
  if (length < n) {
    notes.push(`${seconds.toFixed(1)} s is shorter than the model's ${g(n / model.fs)}-s window; zero-padded`);
    const left = Math.floor((n - length) / 2);
    x = x.map((row) => {
      const padded = new Float32Array(n);
      padded.set(row, left);
      return padded;
    });
  }
  return { x, notes };
}

// Start offsets of windows of n samples; the last ends at the record's end (preprocess.window_starts).
export function windowStarts(length, n) {
  if (length <= n) return [0];
  const starts = [];
  for (let s = 0; s <= length - n; s += n) starts.push(s);
  if (starts[starts.length - 1] !== length - n) starts.push(length - n);
  return starts;
}

// The model's input: float32 (windows, leads, n), each window z-scored per lead.
export function windows(x, n) {
  const starts = windowStarts(x[0].length, n);
  const out = new Float32Array(starts.length * x.length * n);
  starts.forEach((start, w) => {
    x.forEach((row, lead) => {
      const piece = row.subarray(start, start + n);
      let mean = 0;
      for (const v of piece) mean += v;
      mean /= n;
      let variance = 0;
      for (const v of piece) variance += (v - mean) ** 2;
      const scale = Math.sqrt(variance / n) + EPS;
      const offset = (w * x.length + lead) * n;
      for (let i = 0; i < n; i++) out[offset + i] = (piece[i] - mean) / scale;
    });
  });
  return { data: out, count: starts.length };
}

// Per-class probabilities of a record from its windows' logits (rows of `classes` values).
export function probabilities(logits, count, classes, model) {
  const probs = new Float64Array(classes);
  for (let w = 0; w < count; w++) {
    const row = Array.from(logits.subarray(w * classes, (w + 1) * classes));
    if (!row.every(Number.isFinite)) {
      throw new Error(`model ${model.name} gave NaN or infinite outputs; its weights or this input are broken`);
    }
    let p;
    if (model.multilabel) {
      p = row.map((z) => 1 / (1 + Math.exp(-z)));
    } else {
      const top = Math.max(...row);
      const e = row.map((z) => Math.exp(z - top));
      const total = e.reduce((a, b) => a + b, 0);
      p = e.map((v) => v / total);
    }
    p.forEach((v, c) => {
      probs[c] = model.aggregate === "max" ? Math.max(probs[c], v) : probs[c] + v / count;
    });
  }
  return Array.from(probs);
}

// The labels: classes at or above their tuned thresholds; else 0.5 (multi-label) or the top class.
export function decide(probs, model) {
  if (model.thresholds) return model.classes.filter((_, i) => probs[i] >= model.thresholds[i]);
  if (model.multilabel) return model.classes.filter((_, i) => probs[i] >= 0.5);
  return [model.classes[probs.indexOf(Math.max(...probs))]];
}
