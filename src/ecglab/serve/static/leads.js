// Lead names as `ecglab.data.leads` and `ecglab.infer.files.lead_key` match them (case-insensitive, aliases).
export const STANDARD_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];
const CANONICAL = Object.fromEntries(STANDARD_LEADS.map((name) => [name.toLowerCase(), name]));
const ALIASES = { ecg: "I", "lead i": "I", "lead ii": "II", mli: "I", mlii: "II" };
const PREFIX = /^(ecg|ekg|lead)[\s_:.-]*/i;

// The standard name of a lead label (`avr`, `ECG V1`, `Lead II`), or null for a non-ECG signal.
export function leadKey(name) {
  for (const candidate of [name, name.trim().replace(PREFIX, "")]) {
    const key = candidate.trim().toLowerCase();
    if (key in CANONICAL) return CANONICAL[key];
    if (key in ALIASES) return ALIASES[key];
  }
  return null;
}
