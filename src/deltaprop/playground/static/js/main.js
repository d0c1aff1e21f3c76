// The page: one WebSocket to this tab's training session; the server trains, the page draws.

import { drawCurves, drawNetwork, drawOutput } from "./draw.js";
import { fillSettings, readSetting, showUpload, uploadFile } from "./controls.js";
import { renderTrace } from "./trace.js";

const $ = (id) => document.getElementById(id);
const state = { data: null, frame: null, curves: null, trace: null, playing: false, settings: null };
let socket = null;
let drawPending = false;

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function emptyCurves() {
  return { epoch: [], loss: [], val_loss: [], accuracy: [], val_accuracy: [] };
}

function banner(id, text) {
  $(id).textContent = text || "";
  $(id).hidden = !text;
}

const fmt = (v, pct) => (v == null || !isFinite(v) ? "–" : pct ? `${(100 * v).toFixed(1)} %` : v.toPrecision(4));

function showMetrics(m) {
  $("train-loss").textContent = fmt(m.loss);
  $("test-loss").textContent = fmt(m.val_loss);
  $("train-acc").textContent = fmt(m.accuracy, true);
  $("test-acc").textContent = fmt(m.val_accuracy, true);
}

const HANDLERS = {
  settings(m) {
    state.settings = m.settings;
    fillSettings(m.settings);
    banner("error", "");
  },
  dataset(m) {
    state.data = m;
    if (m.fresh || !state.curves) {
      state.curves = emptyCurves();
      state.trace = null;
      renderTrace($("trace"), null, m);
    }
    const classification = m.task === "classification";
    document.querySelectorAll(".acc").forEach((e) => (e.hidden = !classification));
    $("output-note").textContent = `${m.source}: ${m.x.length} points, ${classification ? m.classes.length + " classes" : "regression"}; hollow = test`;
    $("legend").textContent = classification ? "Shading: the predicted class, deeper where the network is surer."
      : m.axes.length === 1 ? "Line: the fitted function f(x)." : "Shading: the fitted value f(x), orange low … blue high.";
    banner("warning", "");
  },
  frame(m) {
    state.frame = m;
    for (const r of m.records) for (const k of Object.keys(state.curves)) state.curves[k].push(r[k] ?? null);
    if (state.curves.epoch.length > 20000) for (const k of Object.keys(state.curves)) state.curves[k] = state.curves[k].filter((_, i) => i % 2 === 0);
    $("epoch").textContent = m.epoch;
    if (m.metrics) showMetrics(m.metrics);
    else if (m.records.length) showMetrics(m.records.at(-1));
    if (m.trace) state.trace = m.trace;
    scheduleDraw();
  },
  status(m) {
    state.playing = m.playing;
    $("play").textContent = m.playing ? "Pause" : "▶ Play";
    $("play").classList.toggle("playing", m.playing);
    $("epoch").textContent = m.epoch;
  },
  trace(m) {
    state.trace = m.index == null ? null : m;
    scheduleDraw();
  },
  command(m) {
    $("command").textContent = m.command;
    navigator.clipboard?.writeText(m.command).catch(() => { /* it is shown on the page */ });
  },
  diverged(m) { banner("warning", m.message); },
  error(m) { banner("error", m.message); },
  export(m) {
    const blob = new Blob([Uint8Array.from(atob(m.model), (c) => c.charCodeAt(0))], { type: "application/octet-stream" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = m.filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    $("command").textContent = m.command;
  },
};

function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}

function pickedDataIndex() {
  if (!state.trace || !state.data) return null;
  let seen = -1;
  for (let i = 0; i < state.data.test.length; i++) {
    if (!state.data.test[i] && ++seen === state.trace.index) return i;
  }
  return null;
}

function draw() {
  const { data, frame, curves } = state;
  if (!data || !frame) return;
  drawOutput($("regions"), data, frame, pickedDataIndex());
  drawNetwork($("network"), data, frame);
  const sizes = frame.sizes;
  $("network-note").textContent = `[${sizes.join(", ")}], ${state.settings?.activation ?? ""}; ${frame.weights.flat(2).length < countWeights(sizes) ? "showing up to 12 units per layer" : ""}`;
  drawCurves($("loss-curve"), curves.epoch, [
    { values: curves.loss, colour: "#1f2933" },
    { values: curves.val_loss, colour: "#e8821e", dashed: true },
  ], { log: true });
  if (data.task === "classification") {
    drawCurves($("accuracy-curve"), curves.epoch, [
      { values: curves.accuracy, colour: "#1f2933" },
      { values: curves.val_accuracy, colour: "#e8821e", dashed: true },
    ], { fixed: [0, 1] });
  }
  renderTrace($("trace"), state.trace, data);
  if (state.trace) $("trace-index").value = state.trace.index;
}

const countWeights = (s) => s.slice(1).reduce((n, m, i) => n + m * s[i], 0);

function pickPoint(event) {
  const { data, frame } = state;
  if (!data || !frame) return;
  const canvas = $("regions");
  const rect = canvas.getBoundingClientRect();
  const mx = ((event.clientX - rect.left) * canvas.width) / rect.width;
  const my = ((event.clientY - rect.top) * canvas.height) / rect.height;
  const [bx, by] = frame.bounds;
  const oneD = data.axes.length === 1;
  let best = null, bestDist = 12 * 12, trainIndex = -1;
  for (let i = 0; i < data.x.length; i++) {
    if (data.test[i]) continue;
    trainIndex++;
    const x = ((data.x[i] - bx[0]) / (bx[1] - bx[0])) * canvas.width;
    const yv = oneD ? data.target[i] : data.y[i];
    const y = canvas.height - ((yv - by[0]) / (by[1] - by[0])) * canvas.height;
    const d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bestDist) { bestDist = d; best = trainIndex; }
  }
  if (best != null) send({ type: "trace", index: best });
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(`${scheme}${location.host}/ws`);
  socket.onopen = () => { $("connection").textContent = "connected"; $("connection").classList.remove("lost"); };
  socket.onclose = () => {
    $("connection").textContent = "disconnected: reload the page";
    $("connection").classList.add("lost");
  };
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    (HANDLERS[m.type] || (() => {}))(m);
  };
}

function wire() {
  $("play").onclick = () => { banner("warning", ""); send({ type: state.playing ? "pause" : "play" }); };
  $("step").onclick = () => send({ type: "step" });
  $("reset").onclick = () => send({ type: "reset" });
  $("export").onclick = () => send({ type: "export" });
  $("copy-command").onclick = () => send({ type: "command" });
  $("regions").onclick = pickPoint;
  $("trace-index").onchange = (e) => send({ type: "trace", index: Number(e.target.value) });
  $("trace-clear").onclick = () => send({ type: "trace", index: null });
  document.querySelectorAll("[data-setting]").forEach((input) => {
    input.onchange = () => send({ type: "configure", settings: readSetting(input) });
  });
  document.querySelectorAll("select.view").forEach((input) => {
    input.onchange = () => send({ type: "configure", settings: { view: [$("view-x").value, $("view-y").value].filter(Boolean) } });
  });
  document.addEventListener("keydown", (e) => {  // space: play / pause
    if (e.code !== "Space" || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(document.activeElement?.tagName)) return;
    e.preventDefault();
    $("play").click();
  });
  $("upload").onchange = async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const result = await uploadFile(file);
    if (result.error) { banner("error", result.error); return; }
    showUpload(result);
    const target = result.columns.at(-1).name;
    send({ type: "configure", settings: { dataset: "upload", upload: result.token, target, features: [], view: [] } });
  };
}

wire();
connect();
