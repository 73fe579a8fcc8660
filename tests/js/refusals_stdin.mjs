// Reads {"records": [[path, ...], ...], "model": {...}, "limits": {...}} on stdin; prints, per record,
// the page's refusal message (or "ok") after reading it and preparing it for the model.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { prepare } from "../../src/ecglab/serve/static/pipeline.js";
import { readRecords } from "../../src/ecglab/serve/static/records.js";

const job = JSON.parse(readFileSync(0, "utf8"));
const answers = [];
for (const paths of job.records) {
  const files = paths.map((p) => new File([readFileSync(p)], basename(p)));
  for (const item of await readRecords(files, {}, job.limits)) {
    try {
      if (item.error) throw item.error;
      prepare(item.name, item.rec, job.model, job.limits);
      answers.push([item.name, "ok"]);
    } catch (error) {
      answers.push([item.name, error.message]);
    }
  }
}
process.stdout.write(JSON.stringify(answers));
