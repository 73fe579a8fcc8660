// Signal checks before a verdict, as `ecglab.infer.quality`: refuse non-finite samples and a flat
// record; warn about flat leads (1st-99th percentile span under 20 µV) and saturated ones.
import { RecordError } from "./errors.js";

const FLAT_MV = 0.02;
const SATURATED_SHARE = 0.1;

// A RecordError when any sample is NaN or infinite, naming the leads.
export function checkSamples(file, x, leadNames) {
  let bad = 0;
  const leads = [];
  x.forEach((row, i) => {
    const count = row.reduce((n, v) => n + (Number.isFinite(v) ? 0 : 1), 0);
    bad += count;
    if (count) leads.push(leadNames[i]);
  });
  if (bad) {
    throw new RecordError(file, `${bad} NaN or infinite sample(s) in lead(s) ${leads.join(", ")}; ` +
      "fill or cut the gaps before scoring");
  }
}

// numpy's default (linear) percentile of sorted values.
function percentile(sorted, q) {
  const position = (q / 100) * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

// Warnings for flat and saturated leads; a RecordError when every lead is a constant.
export function qualityWarnings(file, x, leadNames) {
  const stats = x.map((row) => {
    const sorted = Float64Array.from(row).sort();
    const [min, max] = [sorted[0], sorted[sorted.length - 1]];
    let atMin = 0, atMax = 0;
    for (const v of row) {
      atMin += v === min;
      atMax += v === max;
    }
    const span = percentile(sorted, 99) - percentile(sorted, 1);
    return { constant: min === max, zero: min === 0 && max === 0, flat: span < FLAT_MV,
             edge: Math.max(atMin, atMax) / row.length };
  });
  if (stats.every((s) => s.constant)) {
    const what = stats.every((s) => s.zero) ? "every sample is 0" : "every lead is a constant";
    throw new RecordError(file, `no ECG to classify: ${what} (a flat line); check the file, its gain and units`);
  }
  const notes = [];
  const flat = leadNames.filter((_, i) => stats[i].flat);
  if (flat.length === stats.length) {
    notes.push(`every lead spans under ${FLAT_MV * 1000} µV: a wrong gain or units, or no ECG at all; ` +
      "do not trust this result");
  } else if (flat.length) {
    notes.push(`flat lead(s) ${flat.join(", ")} (under ${FLAT_MV * 1000} µV): scored anyway, trust the result less`);
  }
  const saturated = leadNames.filter((_, i) => stats[i].edge >= SATURATED_SHARE && !stats[i].flat);
  if (saturated.length) {
    notes.push(`saturated lead(s) ${saturated.join(", ")} (at least ${SATURATED_SHARE * 100}% of samples at ` +
      "the lead's limit, clipped): scored anyway, trust the result less");
  }
  return notes;
}
