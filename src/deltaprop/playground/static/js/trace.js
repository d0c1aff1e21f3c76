// The backpropagation panel: the engine's a, z, σ′, δ and ∇ℓ for one training point.

import { diverging, rgb } from "./draw.js";

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};

/** "a⁽ʰ⁾"-style symbol with the layer as a superscript. */
function sym(base, h, rest = "") {
  const span = el("span");
  span.append(base);
  const sup = el("sup", null, `(${h})`);
  span.append(sup, rest);
  return span;
}

function number(v, scale) {
  const cell = el("span", "num", formatted(v));
  const t = scale > 0 ? v / scale : 0;
  cell.style.background = rgb(diverging(t), 0.45);
  cell.title = String(v);
  return cell;
}

function formatted(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(4).replace(/\.?0+$/, "");
}

function vector(values, total) {
  const box = el("div", "vec");
  const scale = Math.max(1e-12, ...values.map(Math.abs));
  values.forEach((v) => box.append(number(v, scale)));
  if (total > values.length) box.append(el("span", "more", `… ${total - values.length} more`));
  return box;
}

function matrix(rows, shape, norm) {
  const box = el("div");
  const shownRows = rows.slice(0, 4), cols = Math.min(rows[0].length, 6);
  const grid = el("div", "matrix");
  grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
  const scale = Math.max(1e-12, ...rows.flat().map(Math.abs));
  shownRows.forEach((r) => r.slice(0, cols).forEach((v) => grid.append(number(v, scale))));
  box.append(grid);
  const hidden = shape[0] * shape[1] - shownRows.length * cols;
  box.append(el("div", "more", `${shape[0]}×${shape[1]}, ‖·‖ = ${formatted(norm)}` + (hidden > 0 ? `, ${hidden} entries not shown` : "")));
  return box;
}

function row(table, cls, label, content) {
  const tr = el("tr", cls);
  const th = el("th");
  th.append(...label);
  const td = el("td");
  td.append(content);
  tr.append(th, td);
  table.append(tr);
}

export function renderTrace(target, trace, data) {
  target.replaceChildren();
  if (!trace || trace.index == null) {
    target.append(el("p", "note", "Click a training point in the output plot (or enter its number) to see the numbers the engine computes for it."));
    return;
  }
  const D = trace.layers.length;
  const truth = data.task === "classification" ? `class ${data.classes[trace.target[0]]}` : formatted(trace.target[0]);
  const head = el("p", "note");
  head.textContent = `Training point #${trace.index}: target ỹ = ${truth}, loss ℓ = ${formatted(trace.loss)}. `
    + `Input layer z(0) = x (${trace.n_inputs} inputs):`;
  target.append(head, vector(trace.x, trace.n_inputs));
  const table = el("table");
  for (const L of trace.layers) {
    const h = L.h, out = h === D;
    row(table, "layer", [sym("a", h), ` = W`, el("sup", null, `(${h})`), ` z`, el("sup", null, `(${h - 1})`), ` + b`, el("sup", null, `(${h})`)], vector(L.a, L.width));
    row(table, "", out ? ["f = ", L.activation, "(", sym("a", h), ")"] : [sym("z", h), ` = ${L.activation}(`, sym("a", h), ")"], vector(L.z, L.width));
    if (!out) row(table, "", ["σ′(", sym("a", h), ")"], vector(L.slope, L.width));
    row(table, "", out ? [sym("δ", h), " = f − ỹ"]
      : [sym("δ", h), " = σ′(", sym("a", h), ") ∘ (W", el("sup", null, `(${h + 1})`), ")ᵀ ", sym("δ", h + 1)], vector(L.delta, L.width));
    row(table, "", ["∇", el("sub", null, `W(${h})`), " ℓ = ", sym("δ", h), " z", el("sup", null, `(${h - 1})ᵀ`)], matrix(L.grad_w, L.grad_w_shape, L.grad_w_norm));
    row(table, "", ["∇", el("sub", null, `b(${h})`), " ℓ = ", sym("δ", h)], vector(L.grad_b, L.width));
  }
  target.append(table);
}
