// WFDB records in the page: a `.hea` header and its signal file (`.dat`, or a CinC `.mat` that the
// header names with a byte offset), decoded to physical units (mV) as `ecglab.data.wfdb_io` does.
import { RecordError } from "./errors.js";

const GAIN = /^([-+\d.eE]+)(?:\(([-+\d]+)\))?(?:\/(\S+))?$/;
const TO_MV = { mv: 1, uv: 1e-3, "µv": 1e-3, "μv": 1e-3, v: 1e3, nv: 1e-6 };
const FORMATS = ["8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524"];
const INVALID_16 = -32768; // WFDB's "no sample" value for 16-bit formats
// The decoder of each format the page reads: the i-th stored value (frame by frame) as an integer.
const DECODERS = {
  16: (view, i) => view.getInt16(2 * i, true),
  61: (view, i) => view.getInt16(2 * i, false),
  80: (view, i) => view.getUint8(i) - 128,
  160: (view, i) => view.getUint16(2 * i, true) - 32768,
  24: (view, i) => (view.getUint8(3 * i) | (view.getUint8(3 * i + 1) << 8) | (view.getInt8(3 * i + 2) << 16)),
  32: (view, i) => view.getInt32(4 * i, true),
  212: (view, i) => {
    const base = 3 * (i >> 1);
    const value = i & 1
      ? view.getUint8(base + 2) | ((view.getUint8(base + 1) & 0xf0) << 4)
      : view.getUint8(base) | ((view.getUint8(base + 1) & 0x0f) << 8);
    return value > 2047 ? value - 4096 : value;
  },
};
// Bytes per stored value (two 212 values share three bytes).
const BYTES = { 16: 2, 61: 2, 80: 1, 160: 2, 24: 3, 32: 4, 212: 1.5 };

function number(text, integer, file, what, line) {
  const value = Number(text);
  if (text === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new RecordError(file, `line ${line}: ${what} '${text}' is not a ${integer ? "whole " : ""}number`);
  }
  return value;
}

function parseSignal(text, file, line) {
  const tok = text.split(/\s+/);
  if (tok.length < 2) throw new RecordError(file, `line ${line}: malformed signal line '${text}'`);
  const [spec, offset = "0"] = tok[1].split("+");
  const [format, perFrame] = spec.split("x");
  const fmt = format.split(":")[0];
  if (!FORMATS.includes(fmt)) {
    throw new RecordError(file, `line ${line}: signal format '${fmt}' is not a WFDB format (${FORMATS.join(", ")})`);
  }
  let gain = 200, baseline = null, units = "mV";
  if (tok.length > 2) {
    const m = GAIN.exec(tok[2]);
    if (!m) throw new RecordError(file, `line ${line}: malformed gain '${tok[2]}'`);
    gain = number(m[1], false, file, "ADC gain", line) || 200;
    if (m[2] !== undefined) baseline = number(m[2], true, file, "baseline", line);
    units = m[3] || "mV";
  }
  const zero = tok.length > 4 ? number(tok[4], true, file, "ADC zero", line) : 0;
  const checksum = tok.length > 6 ? number(tok[6], true, file, "checksum", line) : 0;
  if (tok[0].includes("/") || tok[0].includes("\\") || tok[0] === "." || tok[0] === "..") {
    throw new RecordError(file, `line ${line}: names its signal file '${tok[0]}' outside its own folder; ` +
      "a header's signal file must sit beside it");
  }
  return {
    file: tok[0], fmt, samplesPerFrame: perFrame ? Number(perFrame) : 1, skewed: spec.includes(":"),
    byteOffset: number(offset, true, file, "byte offset", line), gain, baseline: baseline ?? zero, units,
    checksum: checksum || null, name: tok.length > 8 ? tok.slice(8).join(" ") : `sig${tok.length}`,
  };
}

// The parsed header: {fs, nSig, nSamples, signals, multiSegment}; a RecordError for any malformed field.
export function parseHeader(text, file) {
  const body = text.split(/\r?\n|\r/).map((ln, i) => [i + 1, ln.trim()]).filter(([, ln]) => ln && !ln.startsWith("#"));
  if (!body.length) throw new RecordError(file, "empty header");
  const [line, recordLine] = body[0];
  const rec = recordLine.split(/\s+/);
  if (rec.length < 2) {
    throw new RecordError(file, `line ${line}: record line '${recordLine}' does not give the number of signals`);
  }
  const nSig = number(rec[1], true, file, "number of signals", line);
  const fs = rec.length > 2 ? number(rec[2].split("/")[0].split("(")[0], false, file, "sampling rate", line) : 250;
  const nSamples = rec.length > 3 ? number(rec[3], true, file, "number of samples", line) : 0;
  if (nSig < 1) throw new RecordError(file, `line ${line}: says ${nSig} signals; a record needs at least one`);
  if (fs <= 0 || nSamples < 0) {
    throw new RecordError(file, `line ${line}: sampling rate ${fs} Hz and ${nSamples} samples are not possible`);
  }
  const signals = body.slice(1, 1 + nSig).map(([i, ln]) => parseSignal(ln, file, i));
  if (signals.length !== nSig) {
    throw new RecordError(file, `record line says ${nSig} signals, header describes ${signals.length}`);
  }
  return { fs, nSig, nSamples, signals, multiSegment: rec[0].includes("/") };
}

// The stored integers, one Int32Array per signal, from the signal file's bytes.
function digital(header, bytes, dataName) {
  const { signals, nSig } = header;
  const fmt = signals[0].fmt;
  if (signals.some((s) => s.fmt !== fmt || s.file !== signals[0].file || s.byteOffset !== signals[0].byteOffset)) {
    throw new RecordError(dataName, "its signals differ in format, file or offset, which the page does not read; " +
      "score it with `ecglab predict`");
  }
  if (!DECODERS[fmt] || signals.some((s) => s.samplesPerFrame !== 1 || s.skewed)) {
    throw new RecordError(dataName, `WFDB format ${fmt} (or several samples per frame, or skew) is not read in ` +
      "the page; score it with `ecglab predict`, or convert it to format 16 with wfdb");
  }
  const offset = signals[0].byteOffset;
  if (offset > bytes.byteLength) {
    throw new RecordError(dataName, `the header's byte offset ${offset} lies past the end of this ` +
      `${bytes.byteLength}-byte file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, bytes.byteLength - offset);
  const values = Math.floor(view.byteLength / BYTES[fmt]);
  if (header.nSamples && values < nSig * header.nSamples) {
    throw new RecordError(dataName, `truncated: holds ${Math.floor(values / nSig)} of the ${header.nSamples} ` +
      "samples the header gives");
  }
  if (fmt === "16" && values % nSig) {
    throw new RecordError(dataName, `${values} values do not split into ${nSig} signals`);
  }
  if (fmt === "16" && header.nSamples && values !== nSig * header.nSamples) {
    throw new RecordError(dataName, `holds ${values / nSig} samples per signal; the header says ${header.nSamples}`);
  }
  const length = header.nSamples || Math.floor(values / nSig);
  const rows = signals.map(() => new Int32Array(length));
  for (let t = 0; t < length; t++) {
    for (let s = 0; s < nSig; s++) rows[s][t] = DECODERS[fmt](view, t * nSig + s);
  }
  return rows;
}

// float32 leads in mV from a header's text and its signal file's bytes: {x, fs, leadNames}.
export function readWfdb(headerText, headerName, bytes, dataName) {
  const header = parseHeader(headerText, headerName);
  const rows = digital(header, bytes, dataName);
  const sixteenBit = header.signals[0].fmt === "16"; // as wfdb_io's own format-16 reader (others come as int64)
  const x = header.signals.map((sig, s) => {
    const row = rows[s];
    if (sig.checksum !== null) {
      let sum = 0;
      for (const v of row) sum = (sum + v) % 65536;
      if (((sum - sig.checksum) % 65536 + 65536) % 65536) {
        throw new RecordError(dataName, `lead ${sig.name}: data checksum disagrees with the header's`);
      }
    }
    const perMv = TO_MV[sig.units.toLowerCase()];
    if (perMv === undefined) throw new RecordError(headerName, `unknown signal units '${sig.units}'`);
    const scale = Math.fround(perMv / sig.gain);
    const baseline = Math.fround(sig.baseline);
    return Float32Array.from(row, (v) => (sixteenBit && v === INVALID_16 ? NaN : Math.fround(v - baseline) * scale));
  });
  return { x, fs: header.fs, leadNames: header.signals.map((s) => s.name) };
}
