// The operator's dashboard: polls the JSON API and draws the last hour on plain canvases.
// Served by the worker itself; no external scripts, no network beyond this origin.
"use strict";

const REFRESH_MS = 5000;
const COLORS = {
  openai: "#58a6ff", anthropic: "#d2a8ff", gemini: "#3fb950", deepseek: "#f0883e", ollama: "#ff7b72",
  received: "#8a96a3", enriched: "#3fb950", dead_lettered: "#f85149",
  decode: "#d29922", validate: "#f0883e", enrich: "#f85149", publish: "#d2a8ff",
};

function showError(message) {
  const box = document.getElementById("errors");
  box.textContent = message;
}
window.addEventListener("error", (event) => showError(String(event.message)));
window.addEventListener("unhandledrejection", (event) => showError(String(event.reason)));

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function badge(text) {
  const span = document.createElement("span");
  span.className = `badge ${text}`;
  span.textContent = text.replace("_", "-");
  return span;
}

function cell(row, content, numeric) {
  const td = row.insertCell();
  if (numeric) td.className = "num";
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  return td;
}

function fmt(value, digits) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

async function toggle(name, enable) {
  let token = sessionStorage.getItem("adminToken");
  if (!token) {
    token = window.prompt("Admin token (LLM_SERVICE_ADMIN_TOKEN)");
    if (!token) return;
    sessionStorage.setItem("adminToken", token);
  }
  const response = await fetch(`/providers/${name}/${enable ? "enable" : "disable"}`, {
    method: "POST", headers: { Authorization: `Bearer ${token}` },
  });
  if (response.status === 401) sessionStorage.removeItem("adminToken");
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    showError((body.error && body.error.message) || `HTTP ${response.status}`);
  }
  setTimeout(refresh, 1000);
}

// Today's spend against the daily budget (LLM_BUDGETS), flagged once it is spent.
function budget(b) {
  const text = `${fmt(b.spent_today_usd, 4)} / ${fmt(b.daily_usd, 2)}`;
  if (!b.over_budget) return text;
  const span = document.createElement("span");
  span.append(`${text} `, badge("over"));
  return span;
}

function renderProviders(providers) {
  const body = document.querySelector("#providers tbody");
  body.replaceChildren();
  for (const p of providers) {
    const row = body.insertRow();
    row.dataset.provider = p.name;
    cell(row, p.name + (p.in_chain ? "" : " (not in chain)"));
    cell(row, badge(p.enabled ? "on" : "off"));
    cell(row, badge(p.circuit.state));
    cell(row, badge(p.health.state));
    cell(row, String(p.totals.calls), true);
    cell(row, p.totals.success_rate === null ? "–" : `${fmt(p.totals.success_rate * 100, 1)}%`, true);
    cell(row, fmt(p.totals.latency_ms.p50, 0), true);
    cell(row, fmt(p.totals.latency_ms.p95, 0), true);
    cell(row, `${p.totals.input_tokens} (${p.totals.cached_input_tokens}) / ${p.totals.output_tokens}`, true);
    // Confirmed by the vendors' answers, and estimated for calls cut off after they were sent.
    const estimated = p.totals.estimated_cost_usd;
    cell(row, fmt(p.totals.cost_usd - estimated, 4) + (estimated > 0 ? ` + ≈${fmt(estimated, 4)}` : ""), true);
    cell(row, fmt(p.totals.prompt_cache_saved_usd, 4), true);
    cell(row, budget(p.budget), true);
    const button = document.createElement("button");
    button.textContent = p.enabled ? "Disable" : "Enable";
    button.addEventListener("click", () => toggle(p.name, !p.enabled));
    cell(row, button);
  }
}

function renderFailures(failures) {
  const body = document.querySelector("#failures tbody");
  body.replaceChildren();
  if (!failures.length) {
    const row = body.insertRow();
    const td = cell(row, "none");
    td.colSpan = 6;
    td.className = "muted";
  }
  for (const f of failures) {
    const row = body.insertRow();
    cell(row, new Date(f.at).toLocaleTimeString());
    cell(row, f.provider);
    cell(row, f.job_id);
    cell(row, f.outcome);
    cell(row, f.http_status === null ? "–" : String(f.http_status));
    cell(row, f.error);
  }
}

function tile(value, label) {
  const div = document.createElement("div");
  div.className = "tile";
  const number = document.createElement("b");
  number.textContent = value;
  const caption = document.createElement("span");
  caption.textContent = label;
  div.append(number, caption);
  return div;
}

// The batch lane on this worker's partitions, and what all batch calls saved.
function laneTiles(status, providers) {
  const lanes = Object.values(status.batch_lane);
  const sum = (key) => lanes.reduce((total, lane) => total + lane[key], 0);
  const oldest = Math.max(0, ...lanes.map((lane) => lane.oldest_wait_s));
  const saved = providers.reduce((total, p) => total + p.totals.batch_saved_usd, 0);
  return [
    tile(`${sum("jobs_waiting")} / ${sum("batches_sent") + sum("batches_unacknowledged")}`, "batch lane: jobs waiting / batches out"),
    tile(`${fmt(oldest, 0)} s`, "oldest batch-lane wait"),
    tile(`$${fmt(saved, 4)}`, "saved by the Batch APIs"),
  ];
}

function renderJobs(jobs, lane) {
  const minutes = jobs.per_minute;
  const last = minutes[minutes.length - 1] || { received: 0, enriched: 0, dead_lettered: 0 };
  const cache = jobs.repost_cache;
  document.getElementById("jobs-tiles").replaceChildren(
    tile(String(jobs.totals.received), "received"),
    tile(String(jobs.totals.enriched), "enriched"),
    tile(String(jobs.totals.dead_lettered), "dead-lettered"),
    tile(`${last.received} / ${last.enriched + last.dead_lettered}`, "in / out this minute"),
    tile(String(jobs.lag.total), "consumer lag"),
    tile(cache.hit_rate === null ? "–" : `${fmt(cache.hit_rate * 100, 1)}%`, `repost-cache hits (${cache.hits})`),
    tile(`$${fmt(cache.saved_usd, 4)}`, "saved by the repost cache"),
    ...lane,
  );
  const counts = { received: minutes, enriched: minutes, dead_lettered: minutes };
  drawChart("chart-jobs", counts, (m, name) => m[name]);
  const stages = {};
  for (const m of minutes) for (const stage of Object.keys(m.dead_letter_stages)) stages[stage] = minutes;
  drawChart("chart-dead-letters", stages, (m, stage) => m.dead_letter_stages[stage] || 0);
  renderDeadLetters(minutes, jobs.recent_dead_letters);
}

// One row per stage with its count; its latest reasons open with one click.
function renderDeadLetters(minutes, recent) {
  const box = document.getElementById("dead-letters");
  const totals = {};
  for (const m of minutes) {
    for (const [stage, n] of Object.entries(m.dead_letter_stages)) totals[stage] = (totals[stage] || 0) + n;
  }
  if (!Object.keys(totals).length) {
    const none = document.createElement("span");
    none.className = "muted";
    none.textContent = "none";
    box.replaceChildren(none);
    return;
  }
  box.replaceChildren(...Object.entries(totals).map(([stage, n]) => {
    const details = document.createElement("details");
    details.dataset.stage = stage;
    const summary = document.createElement("summary");
    summary.textContent = `${stage}: ${n}`;
    const table = document.createElement("table");
    const reasons = recent.filter((r) => r.stage === stage);
    for (const r of reasons) {
      const row = table.insertRow();
      cell(row, new Date(r.at).toLocaleTimeString());
      cell(row, r.job_id || "(no job id)");
      cell(row, r.error_type);
      cell(row, r.message);
    }
    if (!reasons.length) cell(table.insertRow(), "older than the latest reasons kept");
    details.append(summary, table);
    return details;
  }));
}

// One line per series (a provider, a stage) over the last hour; x = minute, y = value.
function drawChart(id, series, pick) {
  const canvas = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const now = Math.floor(Date.now() / 60000);
  const start = now - 59;
  const lines = Object.entries(series).map(([name, minutes]) => ({
    name,
    points: minutes
      .map((m) => ({ x: Math.floor(Date.parse(m.minute) / 60000), y: pick(m, name) }))
      .filter((pt) => pt.x >= start && pt.y !== null && pt.y !== undefined),
  }));
  const maxY = Math.max(1e-9, ...lines.flatMap((l) => l.points.map((pt) => pt.y)));
  const pad = { left: 44, right: 8, top: 8, bottom: 18 };
  const x = (minute) => pad.left + ((minute - start) / 59) * (width - pad.left - pad.right);
  const y = (value) => height - pad.bottom - (value / maxY) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = "#2b3640"; ctx.fillStyle = "#8a96a3"; ctx.font = "11px system-ui"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const value = (maxY * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, y(value)); ctx.lineTo(width - pad.right, y(value)); ctx.stroke();
    ctx.fillText(value >= 100 ? value.toFixed(0) : value.toPrecision(2), 2, y(value) + 4);
  }
  ctx.fillText("-60 min", pad.left, height - 4);
  ctx.fillText("now", width - pad.right - 22, height - 4);
  let drawn = 0;
  for (const line of lines) {
    ctx.strokeStyle = ctx.fillStyle = COLORS[line.name] || "#e6e6e6";
    ctx.lineWidth = 2;
    ctx.beginPath();
    line.points.forEach((pt, i) => (i ? ctx.lineTo(x(pt.x), y(pt.y)) : ctx.moveTo(x(pt.x), y(pt.y))));
    ctx.stroke();
    for (const pt of line.points) { ctx.beginPath(); ctx.arc(x(pt.x), y(pt.y), 2.5, 0, 2 * Math.PI); ctx.fill(); }
    drawn += line.points.length;
  }
  canvas.dataset.points = String(drawn);
  const legend = canvas.nextElementSibling;
  legend.replaceChildren(...lines.map((l) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[l.name] || "#e6e6e6";
    item.append(swatch, l.name.replace("_", "-"));
    return item;
  }));
}

async function refresh() {
  try {
    const [status, providers, statistics, jobs] = await Promise.all([
      getJSON("/status"), getJSON("/providers"), getJSON("/statistics?minutes=60"), getJSON("/jobs?minutes=60"),
    ]);
    document.getElementById("meta").textContent =
      `${status.app_id} · chain ${status.provider_chain.join(" → ")} · ${status.jobs_in_flight} in flight` +
      ` · today ${fmt(status.budget.spent_today_usd, 4)} / ${fmt(status.budget.daily_usd, 2)} USD` +
      (status.intake_paused ? " · intake paused" : "");
    renderJobs(jobs, laneTiles(status, providers.providers));
    renderProviders(providers.providers);
    renderFailures(statistics.recent_failures);
    const series = statistics.per_minute;
    drawChart("chart-success", series, (m) => (m.success_rate === null ? null : m.success_rate * 100));
    drawChart("chart-latency", series, (m) => m.latency_ms.p95);
    drawChart("chart-throughput", series, (m) => m.calls);
    drawChart("chart-cost", series, (m) => m.cost_usd);
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(String(error));
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
