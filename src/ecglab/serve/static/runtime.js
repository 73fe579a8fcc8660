// ONNX Runtime Web, loaded from this server's /static/vendor/ (`make web` puts it there): the
// single-threaded WebAssembly build, so the page needs no cross-origin isolation.
const VENDOR = "/static/vendor/";
const BATCH_SIZE = 64;
let ortModule = null;

// The `ort` module; an Error that names `make web` when the runtime files are not installed.
export async function loadRuntime() {
  if (ortModule) return ortModule;
  let ort;
  try {
    ort = await import(`${VENDOR}ort.wasm.min.mjs`);
  } catch (error) {
    const body = await fetch(`${VENDOR}ort.wasm.min.mjs`).then((r) => r.json()).catch(() => ({}));
    throw new Error(body.detail || `ONNX Runtime Web did not load (${error}); run \`make web\` and restart the server`);
  }
  ort.env.wasm.wasmPaths = VENDOR;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ortModule = ort;
  return ort;
}

// A session for one model's ONNX bytes, with run(data, count, leads, n) -> Float32Array of logits.
export async function createSession(bytes) {
  const ort = await loadRuntime();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  return {
    async run(data, count, leads, n) {
      const parts = [];
      for (let start = 0; start < count; start += BATCH_SIZE) {
        const size = Math.min(BATCH_SIZE, count - start);
        const batch = data.subarray(start * leads * n, (start + size) * leads * n);
        const result = await session.run({ [input]: new ort.Tensor("float32", batch, [size, leads, n]) });
        parts.push(result[output].data);
      }
      const logits = new Float32Array(parts.reduce((total, p) => total + p.length, 0));
      let offset = 0;
      for (const p of parts) {
        logits.set(p, offset);
        offset += p.length;
      }
      return logits;
    },
  };
}
