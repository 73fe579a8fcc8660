// Reads {"leads": [[...], ...], "fs_in": HZ, "fs_out": HZ} on stdin, prints the page's resampled leads as JSON.
import { readFileSync } from "node:fs";
import { resample } from "../../src/ecglab/serve/static/resample.js";

const job = JSON.parse(readFileSync(0, "utf8"));
const leads = job.leads.map((row) => Float32Array.from(row));
const out = resample(leads, job.fs_in, job.fs_out);
process.stdout.write(JSON.stringify(out.map((row) => Array.from(row))));
