// Polyphase resampling equal to `ecglab.data.preprocess.resample`, i.e. scipy.signal.resample_poly
// on float32 samples: the up/down ratio is Fraction(fsOut / fsIn).limit_denominator(1000); the
// filter is firwin(2 * half + 1, 1 / max(up, down), window=("kaiser", 5.0)), half = 10 * max(up, down),
// cast to float32 and multiplied by up; the signal is zero-padded, upsampled, filtered, downsampled
// and trimmed as scipy's upfirdn does. Sums run in float32 in scipy's order, so results match it.
const f32 = Math.fround;
const KAISER_BETA = 5.0;
const MAX_DENOMINATOR = 1000n;

// The exact value of a finite double as a fraction of BigInts [numerator, denominator].
function exactFraction(value) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  if (exponent) mantissa |= 1n << 52n;
  const power = (exponent || 1) - 1075;
  if (power >= 0) return [sign * (mantissa << BigInt(power)), 1n];
  let den = 1n << BigInt(-power);
  const divisor = gcd(mantissa, den);
  return [sign * (mantissa / divisor), den / divisor];
}

function gcd(a, b) {
  a = a < 0n ? -a : a;
  while (b) [a, b] = [b, a % b];
  return a;
}

// The closest fraction to n/d with a denominator at most `limit` (Python's Fraction.limit_denominator).
function limitDenominator([n, d], limit) {
  if (d <= limit) return [n, d];
  const [n0, d0] = [n, d];
  let [p0, q0, p1, q1] = [0n, 1n, 1n, 0n];
  while (true) {
    const a = n / d;
    const q2 = q0 + a * q1;
    if (q2 > limit) break;
    [p0, q0, p1, q1] = [p1, q1, p0 + a * p1, q2];
    [n, d] = [d, n - a * d];
  }
  const k = (limit - q0) / q1;
  const near = [p1, q1]; // a convergent
  const semi = [p0 + k * p1, q0 + k * q1]; // the best semiconvergent under the limit
  const distance = ([p, q]) => {
    const num = p * d0 - n0 * q;
    return [num < 0n ? -num : num, q * d0];
  };
  const [a, qa] = distance(near);
  const [b, qb] = distance(semi);
  return a * qb <= b * qa ? near : semi;
}

// [up, down] for resampling fsIn to fsOut, as `preprocess.resample` computes them.
export function ratio(fsIn, fsOut) {
  const [up, down] = limitDenominator(exactFraction(fsOut / fsIn), MAX_DENOMINATOR);
  const g = gcd(up, down);
  return [Number(up / g), Number(down / g)];
}

// The modified Bessel function of the first kind, order 0 (its power series converges for any x).
function besselI0(x) {
  const quarter = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; term > sum * 1e-17; k++) {
    term *= quarter / (k * k);
    sum += term;
  }
  return sum;
}

function sinc(x) {
  return x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
}

// scipy's firwin(taps, cutoff, window=("kaiser", beta)) low-pass filter, scaled to unit gain at 0 Hz.
export function lowpass(taps, cutoff, beta = KAISER_BETA) {
  const alpha = (taps - 1) / 2;
  const h = new Float64Array(taps);
  for (let i = 0; i < taps; i++) {
    const m = i - alpha;
    const taper = besselI0(beta * Math.sqrt(1 - ((i - alpha) / alpha) ** 2)) / besselI0(beta);
    h[i] = cutoff * sinc(cutoff * m) * taper;
  }
  const total = h.reduce((sum, v) => sum + v, 0);
  return h.map((v) => v / total);
}

function outputLength(hLen, inLen, up, down) {
  return Math.floor(((inLen - 1) * up + hLen - 1) / down) + 1;
}

// The float32 filter scipy applies for (up, down): firwin's taps as float32 times up, zero-padded so
// the kept outputs sit at its centre; with the number of leading outputs to drop.
function polyphaseFilter(inLen, up, down) {
  const half = 10 * Math.max(up, down);
  const taps = lowpass(2 * half + 1, 1 / Math.max(up, down));
  const prePad = down - (half % down);
  const nOut = Math.ceil((inLen * up) / down);
  const dropFirst = Math.floor((half + prePad) / down);
  let postPad = 0;
  while (outputLength(taps.length + prePad + postPad, inLen, up, down) < nOut + dropFirst) postPad++;
  const h = new Float32Array(prePad + taps.length + postPad);
  taps.forEach((v, i) => {
    h[prePad + i] = f32(f32(v) * up);
  });
  return { h, nOut, dropFirst };
}

// One lead resampled by up/down: y[m] = sum over n of x[n] * h[(m + dropFirst) * down - n * up].
function resampleRow(x, up, down, filter) {
  const { h, nOut, dropFirst } = filter;
  const y = new Float32Array(nOut);
  for (let m = 0; m < nOut; m++) {
    const position = (m + dropFirst) * down;
    const first = Math.max(0, Math.ceil((position - h.length + 1) / up));
    const last = Math.min(x.length - 1, Math.floor(position / up));
    let sum = 0;
    for (let n = first; n <= last; n++) sum = f32(sum + f32(x[n] * h[position - n * up]));
    y[m] = sum;
  }
  return y;
}

// Every lead (an array of Float32Array) resampled from fsIn to fsOut Hz.
export function resample(leads, fsIn, fsOut) {
  if (fsIn === fsOut) return leads;
  const [up, down] = ratio(fsIn, fsOut);
  if (up === 1 && down === 1) return leads.map((row) => Float32Array.from(row));
  const filter = polyphaseFilter(leads[0].length, up, down);
  return leads.map((row) => resampleRow(row, up, down, filter));
}
