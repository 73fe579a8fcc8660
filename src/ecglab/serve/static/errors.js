// The one error of the page for a record it cannot use: names the file, like `ecglab.data.errors.RecordError`.
export class RecordError extends Error {
  constructor(file, problem) {
    super(`${file}: ${problem}`);
    this.file = file;
    this.problem = problem;
  }
}

// A number as Python's `{:g}` writes it (six significant digits, no trailing zeros).
export function g(value) {
  return Number(value.toPrecision(6)).toString();
}
