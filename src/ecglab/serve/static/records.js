// The records among the chosen files, read in the page: each WFDB header with the signal file it
// names, or a CSV alone. One result per record: {name, rec: {x, fs, leadNames}} or {name, error}.
// The same refusals as `ecglab predict` (`ecglab.infer.files.read_ecg` and `ecglab.infer.limits`).
import { readCsv } from "./csv.js";
import { RecordError, g } from "./errors.js";
import { checkSamples } from "./quality.js";
import { parseHeader, readWfdb } from "./wfdb.js";

const READ_HERE = [".hea", ".dat", ".mat", ".csv"];
const ELSEWHERE = [".npy", ".edf", ".bdf"];

function suffix(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot).toLowerCase() : "";
}

function stem(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

// Rate and length within the server's limits ({min_fs, max_fs, max_minutes}), as `Limits` checks them.
export function checkRate(file, fs, limits) {
  if (!(Number.isFinite(fs) && limits.min_fs <= fs && fs <= limits.max_fs)) {
    throw new RecordError(file, `sampling rate ${g(fs)} Hz is outside ${g(limits.min_fs)}-${g(limits.max_fs)} Hz; ` +
      "give the true rate, or set ECGLAB_MIN_FS/ECGLAB_MAX_FS to accept it");
  }
}

function checkLength(file, samples, fs, limits) {
  const minutes = samples / fs / 60;
  if (minutes > limits.max_minutes) {
    throw new RecordError(file, `${minutes.toFixed(1)} minutes long; records up to ${g(limits.max_minutes)} ` +
      "minutes are scored, so send an excerpt or set ECGLAB_MAX_MINUTES");
  }
}

// Group the files: [{name, files: [header, signal]}] for WFDB, [{name, files: [csv]}], or {name, error}.
async function group(files) {
  const byName = new Map(files.map((f) => [f.name, f]));
  const used = new Set();
  const groups = [];
  for (const file of files.filter((f) => suffix(f.name) === ".hea")) {
    used.add(file.name);
    try {
      const header = parseHeader(await file.text(), file.name);
      if (header.multiSegment) throw new RecordError(file.name, "is a multi-segment WFDB record; choose a single-segment record");
      const signal = header.signals[0].file;
      for (const sig of header.signals) used.add(sig.file);
      if (!byName.has(signal) || signal === file.name) {
        throw new RecordError(file.name, `names the signal file '${signal}', which was not chosen with it; ` +
          "choose the header and its signal file together");
      }
      groups.push({ name: file.name, files: [file, byName.get(signal)] });
    } catch (error) {
      groups.push({ name: file.name, error });
    }
  }
  for (const file of files.filter((f) => !used.has(f.name))) {
    groups.push({ name: file.name, files: [file], error: loneFileError(file.name) });
  }
  return groups;
}

// Why a file that no header names cannot be read alone (null for a CSV, which can).
function loneFileError(name) {
  const kind = suffix(name);
  if (kind === ".csv") return null;
  if (kind === ".dat") return new RecordError(name, `a .dat file holds only samples; choose its header ${stem(name)}.hea with it`);
  if (kind === ".mat") {
    return new RecordError(name, `a CinC-form .mat needs its header ${stem(name)}.hea chosen with it for rate and ` +
      "leads (the original CPSC 2018 .mat files are read by `ecglab predict`)");
  }
  if (ELSEWHERE.includes(kind)) {
    return new RecordError(name, `${kind} files are not read in the page; score it with \`ecglab predict\` or ` +
      "convert it to CSV");
  }
  return new RecordError(name, `unsupported file type '${kind || "(none)"}'; the page reads ${READ_HERE.join(", ")}`);
}

async function readOne({ name, files }, options, limits) {
  if (options.fs) checkRate(name, options.fs, limits);
  let rec;
  if (suffix(name) === ".csv") {
    rec = readCsv(await files[0].text(), name, options);
  } else {
    const header = parseHeader(await files[0].text(), name);
    checkRate(name, header.fs, limits); // before the samples are read
    checkLength(name, header.nSamples, header.fs, limits);
    rec = readWfdb(await files[0].text(), name, new Uint8Array(await files[1].arrayBuffer()), files[1].name);
  }
  if (!rec.x[0].length) throw new RecordError(name, "holds no samples");
  checkRate(name, rec.fs, limits);
  checkLength(name, rec.x[0].length, rec.fs, limits);
  checkSamples(name, rec.x, rec.leadNames);
  return rec;
}

// Every record among `files`, read or refused: [{name, rec} | {name, error}] in the order chosen.
export async function readRecords(files, options, limits) {
  const results = [];
  for (const item of await group(Array.from(files))) {
    if (item.error) {
      results.push({ name: item.name, error: item.error });
      continue;
    }
    try {
      results.push({ name: item.name, rec: await readOne(item, options, limits) });
    } catch (error) {
      results.push({ name: item.name, error });
    }
  }
  return results;
}
