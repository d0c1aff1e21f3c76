// Canvas drawing: decision regions / fitted surface, loss and accuracy curves, the network.

const PALETTE = [
  [47, 111, 208], [232, 130, 30], [46, 160, 90], [200, 60, 80], [140, 90, 200],
  [30, 170, 190], [190, 150, 30], [120, 120, 120], [220, 100, 180], [90, 140, 60],
];
export const POS = [47, 111, 208];
export const NEG = [232, 130, 30];

export function classColour(k) {
  if (k < PALETTE.length) return PALETTE[k];
  const hue = (k * 137.5) % 360;  // golden-angle hues for many classes
  return hslToRgb(hue / 360, 0.55, 0.5);
}

function hslToRgb(h, s, l) {
  const f = (n) => {
    const k = (n + h * 12) % 12;
    const a = s * Math.min(l, 1 - l);
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** t in [-1, 1] → orange (negative) … white … blue (positive). */
export function diverging(t) {
  const c = t >= 0 ? POS : NEG;
  const a = Math.min(1, Math.abs(t));
  return c.map((v) => Math.round(255 + (v - 255) * a));
}

export const rgb = (c, alpha = 1) => `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;

export function bytes(b64) {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function targetRange(data) {
  let lo = Infinity, hi = -Infinity;
  for (const v of data.target) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return [lo, hi];
}

function valueColour(v, range) {
  const mid = (range[0] + range[1]) / 2, half = (range[1] - range[0]) / 2 || 1;
  return diverging((v - mid) / half);
}

/** The output plot: regions or surface over the plotted plane, then the points. */
export function drawOutput(canvas, data, frame, pickedIndex) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  const [bx, by] = frame.bounds;
  const px = (x) => ((x - bx[0]) / (bx[1] - bx[0])) * W;
  const py = (y) => H - ((y - by[0]) / (by[1] - by[0])) * H;
  ctx.clearRect(0, 0, W, H);
  const oneD = data.axes.length === 1;
  const range = data.task === "regression" ? targetRange(data) : null;
  if (oneD) {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
  } else {
    drawBackground(ctx, frame, data, range, W, H);
  }
  ctx.strokeStyle = "rgba(0,0,0,0.08)";
  ctx.lineWidth = 1;
  for (const x of ticks(bx)) { ctx.beginPath(); ctx.moveTo(px(x), 0); ctx.lineTo(px(x), H); ctx.stroke(); }
  for (const y of ticks(by)) { ctx.beginPath(); ctx.moveTo(0, py(y)); ctx.lineTo(W, py(y)); ctx.stroke(); }
  for (let i = 0; i < data.x.length; i++) {
    const x = px(data.x[i]);
    const y = py(oneD ? data.target[i] : data.y[i]);
    const c = data.task === "classification" ? classColour(data.target[i])
      : oneD ? [90, 90, 90] : valueColour(data.target[i], range);
    ctx.beginPath();
    ctx.arc(x, y, 3.6, 0, 2 * Math.PI);
    if (data.test[i]) {
      ctx.fillStyle = "#fff"; ctx.fill();
      ctx.lineWidth = 1.8; ctx.strokeStyle = rgb(c); ctx.stroke();
    } else {
      ctx.fillStyle = rgb(c); ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = data.task === "regression" && !oneD ? "rgba(0,0,0,0.45)" : "#fff";
      ctx.stroke();
    }
  }
  if (oneD && frame.surface) {
    const f = new Float32Array(bytes(frame.surface).buffer);
    ctx.beginPath();
    for (let i = 0; i < f.length; i++) {
      const x = bx[0] + ((bx[1] - bx[0]) * i) / (f.length - 1);
      i ? ctx.lineTo(px(x), py(f[i])) : ctx.moveTo(px(x), py(f[i]));
    }
    ctx.lineWidth = 2.5; ctx.strokeStyle = rgb(POS); ctx.stroke();
  }
  if (pickedIndex != null) {
    const x = px(data.x[pickedIndex]);
    const y = py(oneD ? data.target[pickedIndex] : data.y[pickedIndex]);
    ctx.beginPath(); ctx.arc(x, y, 8, 0, 2 * Math.PI);
    ctx.lineWidth = 2.5; ctx.strokeStyle = "#111"; ctx.stroke();
  }
  ctx.fillStyle = "rgba(0,0,0,0.55)";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(`${data.axes[0]} →`, W - 70, H - 6);
  ctx.save(); ctx.translate(12, 70); ctx.rotate(-Math.PI / 2);
  ctx.fillText(`${oneD ? "y" : data.axes[1]} →`, 0, 0); ctx.restore();
  return { px, py };
}

function drawBackground(ctx, frame, data, range, W, H) {
  const side = frame.side;
  const image = new ImageData(side, side);
  if (frame.classes) {
    const cls = bytes(frame.classes), conf = bytes(frame.confidence);
    const K = Math.max(2, data.classes.length);
    for (let i = 0; i < cls.length; i++) {
      const c = classColour(cls[i]);
      const sure = Math.max(0, (conf[i] / 255 - 1 / K) / (1 - 1 / K));
      const a = 0.12 + 0.5 * sure;
      image.data.set([255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a, 255], 4 * i);
    }
  } else {
    const f = new Float32Array(bytes(frame.surface).buffer);
    for (let i = 0; i < f.length; i++) {
      const c = valueColour(f[i], range).map((v) => 255 + (v - 255) * 0.75);
      image.data.set([c[0], c[1], c[2], 255], 4 * i);
    }
  }
  const off = new OffscreenCanvas(side, side);
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, W, H);
}

function ticks([lo, hi]) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / 2)));
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out.length > 12 ? out.filter((_, i) => i % 2 === 0) : out;
}

/** Train (solid) and test (dashed) series against the epoch; ``log`` for loss. */
export function drawCurves(canvas, epochs, series, { log = false, fixed = null } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 44, bottom = 16;
  ctx.clearRect(0, 0, W, H);
  const values = series.flatMap((s) => s.values).filter((v) => v != null && isFinite(v) && (!log || v > 0));
  if (!epochs.length || !values.length) return;
  let [lo, hi] = fixed || [Math.min(...values), Math.max(...values)];
  if (log) { lo = Math.log10(lo); hi = Math.log10(hi); }
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const pad = (hi - lo) * 0.06;
  lo -= pad; hi += pad;
  const e0 = epochs[0], e1 = Math.max(epochs[epochs.length - 1], e0 + 1);
  const px = (e) => left + ((e - e0) / (e1 - e0)) * (W - left - 6);
  const py = (v) => H - bottom - (((log ? Math.log10(v) : v) - lo) / (hi - lo)) * (H - bottom - 6);
  ctx.strokeStyle = "#dde1e6"; ctx.lineWidth = 1;
  ctx.strokeRect(left, 6, W - left - 6, H - bottom - 6);
  ctx.fillStyle = "#66727f"; ctx.font = "10px system-ui, sans-serif";
  const label = (v) => (log ? Math.pow(10, v) : v).toPrecision(2);
  ctx.fillText(label(hi - pad), 2, 14);
  ctx.fillText(label(lo + pad), 2, H - bottom);
  ctx.fillText(`epoch ${e1}`, W - 70, H - 3);
  const stride = Math.max(1, Math.floor(epochs.length / (W - left)));
  for (const s of series) {
    ctx.beginPath();
    let open = false;
    for (let i = 0; i < epochs.length; i += stride) {
      const v = s.values[i];
      if (v == null || !isFinite(v) || (log && v <= 0)) { open = false; continue; }
      open ? ctx.lineTo(px(epochs[i]), py(v)) : ctx.moveTo(px(epochs[i]), py(v));
      open = true;
    }
    if (epochs.length === 1 && s.values[0] != null) ctx.arc(px(epochs[0]), py(s.values[0]), 2, 0, 2 * Math.PI);
    ctx.setLineDash(s.dashed ? [5, 3] : []);
    ctx.lineWidth = 2; ctx.strokeStyle = s.colour; ctx.stroke();
  }
  ctx.setLineDash([]);
}

/** Inputs, hidden units (each a heat map of its output) and outputs, joined by the weights. */
export function drawNetwork(canvas, data, frame) {
  const sizes = frame.sizes, shown = frame.weights.map((W) => W[0].length).concat([frame.weights.at(-1).length]);
  const box = 34, gapY = 10, top = 34;
  const tallest = Math.max(...shown);
  canvas.height = Math.max(220, top + tallest * (box + gapY) + 24);
  const room = canvas.parentElement.clientWidth - 24;
  if (room > 300 && canvas.width !== room) canvas.width = room;
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const columns = sizes.length;
  const left = 56, right = 76;  // room for the input and output names
  const cx = (l) => left + ((W - left - right - box) * l) / (columns - 1) + box / 2;
  const cy = (l, k) => top + (tallest - shown[l]) * (box + gapY) / 2 + k * (box + gapY) + box / 2;
  let wmax = 1e-12;
  for (const Wl of frame.weights) for (const row of Wl) for (const w of row) wmax = Math.max(wmax, Math.abs(w));
  frame.weights.forEach((Wl, l) => {
    Wl.forEach((row, k) => row.forEach((w, j) => {
      ctx.beginPath();
      ctx.moveTo(cx(l) + box / 2, cy(l, j));
      ctx.lineTo(cx(l + 1) - box / 2, cy(l + 1, k));
      ctx.lineWidth = 0.4 + 5 * Math.abs(w) / wmax;
      ctx.strokeStyle = rgb(w >= 0 ? POS : NEG, 0.25 + 0.6 * Math.abs(w) / wmax);
      ctx.stroke();
    }));
  });
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  const tight = cx(1) - cx(0) < 76;  // many layers: short labels on two lines
  for (let l = 0; l < columns; l++) {
    ctx.fillStyle = "#66727f";
    const kind = l === 0 ? "input" : l === columns - 1 ? "output" : `h${l}`;
    if (tight) {
      ctx.fillText(kind, cx(l), 11);
      ctx.fillText(String(sizes[l]), cx(l), 24);
    } else {
      ctx.fillText(l === 0 || l === columns - 1 ? `${kind} (${sizes[l]})` : `${kind}: ${sizes[l]}`, cx(l), 16);
    }
    const more = sizes[l] - shown[l];
    if (more > 0) ctx.fillText(tight ? `+${more}` : `+${more} more`, cx(l), cy(l, shown[l] - 1) + box / 2 + 14);
    for (let k = 0; k < shown[l]; k++) {
      const x = cx(l) - box / 2, y = cy(l, k) - box / 2;
      if (l === 0) drawInput(ctx, data, k, x, y, box);
      else if (l === columns - 1) drawOutputUnit(ctx, data, k, x, y, box);
      else drawUnit(ctx, frame.units[l - 1][k], frame.unit_shape, x, y, box);
    }
  }
  ctx.textAlign = "start";
}

function drawUnit(ctx, b64, [h, w], x, y, box) {
  const values = new Int8Array(bytes(b64).buffer);
  const image = new ImageData(w, h);
  values.forEach((v, i) => image.data.set([...diverging(v / 127), 255], 4 * i));
  const off = new OffscreenCanvas(w, h);
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.drawImage(off, x, y, box, box);
  ctx.strokeStyle = "#b9c0c8"; ctx.lineWidth = 1; ctx.strokeRect(x + 0.5, y + 0.5, box - 1, box - 1);
}

function drawInput(ctx, data, j, x, y, box) {
  const name = data.features[j];
  const axis = data.axes.indexOf(name);
  const g = axis === 0 ? ctx.createLinearGradient(x, 0, x + box, 0)
    : axis === 1 ? ctx.createLinearGradient(0, y + box, 0, y) : null;
  if (g) { g.addColorStop(0, rgb(NEG, 0.8)); g.addColorStop(0.5, "#fff"); g.addColorStop(1, rgb(POS, 0.8)); }
  ctx.fillStyle = g || "#eef0f3";
  ctx.fillRect(x, y, box, box);
  ctx.strokeStyle = "#b9c0c8"; ctx.strokeRect(x + 0.5, y + 0.5, box - 1, box - 1);
  ctx.fillStyle = "#1f2933";
  ctx.textAlign = "right";
  ctx.fillText(name.length > 8 ? name.slice(0, 7) + "…" : name, x - 4, y + box / 2 + 4);
  ctx.textAlign = "center";
}

function drawOutputUnit(ctx, data, k, x, y, box) {
  const c = data.task === "classification" ? classColour(k) : [90, 90, 90];
  ctx.beginPath(); ctx.arc(x + box / 2, y + box / 2, box / 2.6, 0, 2 * Math.PI);
  ctx.fillStyle = rgb(c); ctx.fill();
  ctx.fillStyle = "#1f2933";
  ctx.textAlign = "left";
  const name = data.task === "classification" ? data.classes[k] : "ŷ";
  ctx.fillText(name.length > 10 ? name.slice(0, 9) + "…" : name, x + box + 2, y + box / 2 + 4);
  ctx.textAlign = "center";
}
