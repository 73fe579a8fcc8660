// CSV files as `ecglab predict` reads them (`ecglab.infer.files._read_csv`): a Chapman-Shaoxing file
// (12 lead columns in µV) unless lead names are given, its columns are other leads or a leading
// `# fs=HZ` comment states its rate; otherwise a table of samples x leads in mV.
import { RecordError } from "./errors.js";
import { STANDARD_LEADS, leadKey } from "./leads.js";

export const UNITS = { mv: 1, uv: 1e-3, "µv": 1e-3, "μv": 1e-3, v: 1e3 };
const STATED_FS = /^#.*?(?:fs|rate|frequency)\s*[:=]?\s*([0-9]+(?:\.[0-9]+)?)/i;
const SPECIAL = /^[+-]?(nan|inf|infinity)$/i;

function isNumber(text) {
  const t = text.trim();
  return t !== "" && (SPECIAL.test(t) || !Number.isNaN(Number(t)));
}

function parseNumber(text) {
  const t = text.trim().replace(/^"|"$/g, "");
  if (SPECIAL.test(t)) return t.toLowerCase().includes("nan") ? NaN : (t.startsWith("-") ? -Infinity : Infinity);
  return t === "" ? NaN : Number(t);
}

// The rate a leading comment states (or null), the first line that is not a comment, and the rest.
function preamble(lines, file) {
  let stated = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trimStart().startsWith("#")) {
      if (!line.trim()) break;
      return { stated, first: line, rest: lines.slice(i) };
    }
    const match = STATED_FS.exec(line.trim());
    if (match && stated === null) stated = Number(match[1]);
  }
  throw new RecordError(file, "empty file");
}

// The columns of a numeric table (a Float32Array per column), comment lines and a header row skipped.
function table(lines, skipHeader, file) {
  const rows = lines.filter((ln) => ln.trim() && !ln.trimStart().startsWith("#")).slice(skipHeader ? 1 : 0);
  const width = rows.length ? rows[0].split(",").length : 0;
  const columns = Array.from({ length: width }, () => new Float32Array(rows.length));
  rows.forEach((row, t) => {
    const cells = row.split(",");
    if (cells.length !== width) {
      throw new RecordError(file, `not a table of numbers (line ${t + 1 + (skipHeader ? 1 : 0)} has ` +
        `${cells.length} cells, the first ${width})`);
    }
    cells.forEach((cell, c) => {
      const value = parseNumber(cell);
      if (Number.isNaN(value) && cell.trim() && !/nan/i.test(cell)) { // an empty cell is NaN, as in pandas
        throw new RecordError(file, `not a table of numbers (could not convert '${cell.trim()}' to a number)`);
      }
      columns[c][t] = value;
    });
  });
  return columns;
}

// {x, fs, leadNames} from a CSV file's text; `options` are the page's fs, leads and units fields.
export function readCsv(text, file, { fs = null, leads = null, units = null } = {}) {
  const lines = text.split(/\r?\n/);
  const { stated, first } = preamble(lines, file);
  const rate = fs || stated;
  const cells = first.split(",").map((c) => c.trim().replace(/^"|"$/g, ""));
  const header = cells.some((c) => c && !isNumber(c)) ? cells : null;
  const keys = header ? header.map(leadKey) : [];
  const chapman = !leads && stated === null && cells.length === STANDARD_LEADS.length &&
    (!header || (new Set(keys).size === 12 && STANDARD_LEADS.every((lead) => keys.includes(lead))));
  if (!rate) {
    const hint = chapman ? " (Chapman-Shaoxing files are 500 Hz)" : "";
    throw new RecordError(file, `a CSV file does not state its sampling rate; give the sampling rate${hint} ` +
      "or start it with '# fs=HZ'");
  }
  const columns = table(lines, Boolean(header), file);
  const scaled = (col, factor) => col.map((v) => v * Math.fround(factor));
  if (chapman) {
    if (columns.length !== 12) {
      throw new RecordError(file, `${columns.length} columns; expected the 12 leads ${STANDARD_LEADS.join(", ")}`);
    }
    const ordered = header ? STANDARD_LEADS.map((lead) => columns[keys.indexOf(lead)]) : columns;
    const mv = ordered.map((col) => scaled(col, UNITS.uv)); // Chapman-Shaoxing files are in µV
    return { x: units ? mv.map((col) => scaled(col, UNITS[units.toLowerCase()] / UNITS.uv)) : mv, fs: rate,
             leadNames: [...STANDARD_LEADS] };
  }
  const names = leads || header;
  if (!names) {
    throw new RecordError(file, `${cells.length} unnamed columns; add a header row of lead names or give the leads`);
  }
  if (columns.length !== names.length) {
    throw new RecordError(file, `${columns.length} columns but ${names.length} lead names (${names.join(", ")})`);
  }
  return { x: columns.map((col) => scaled(col, UNITS[(units || "mv").toLowerCase()])), fs: rate, leadNames: names };
}
