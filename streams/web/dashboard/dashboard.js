// The operator's dashboard: polls the JSON API and draws the last hour on plain canvases.
// Served by the worker itself; no external scripts, no network beyond this origin.
"use strict";

const REFRESH_MS = 5000;
const COLORS = {
  openai: "#58a6ff", anthropic: "#d2a8ff", gemini: "#3fb950", deepseek: "#f0883e", ollama: "#ff7b72",
  compatible: "#79c0ff",
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

function renderTenants(tenants) {
  const entries = Object.entries(tenants);
  document.getElementById("tenants").hidden = entries.length === 0;
  const rows = entries.map(([name, t]) => {
    const row = document.createElement("tr");
    cell(row, name);
    cell(row, fmt(t.weight, 1), true);
    cell(row, String(t.in_flight), true);
    cell(row, String(t.waiting), true);
    cell(row, t.waiting ? fmt(t.oldest_wait_s, 1) : "–", true);
    cell(row, fmt(t.spent_today_usd, 4), true);
    cell(row, t.daily_budget_usd === null ? "–" : fmt(t.daily_budget_usd, 2), true);
    cell(row, t.daily_budget_usd === null ? "–" : fmt(Math.max(0, t.daily_budget_usd - t.spent_today_usd), 4), true);
    cell(row, t.over_budget ? badge("over_budget") : "");
    return row;
  });
  document.querySelector("#tenant-table tbody").replaceChildren(...rows);
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
  drawChart("chart-jobs", counts, (m, name) => m[name], { counts: true });
  const stages = {};
  for (const m of minutes) for (const stage of Object.keys(m.dead_letter_stages)) stages[stage] = minutes;
  drawChart("chart-dead-letters", stages, (m, stage) => m.dead_letter_stages[stage] || 0, { counts: true });
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

// The axis top: the largest value rounded up to 1, 2 or 5 times a power of ten, and 1 for a
// chart of zeros (not a scale of 1e-9 with labels nobody can read).
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((top) => top >= value);
}

function label(value) {
  if (value === 0) return "0";
  return value >= 100 ? value.toFixed(0) : String(Number(value.toPrecision(3)));
}

// Each series' minutes as runs of consecutive minutes. Counts (``counts``: jobs, calls,
// cost) are 0 in a minute without data, so every minute of the hour is in one run; a rate or
// a latency has no value there, so its runs break.
function runs(points, start, now, counts) {
  const byMinute = new Map(points.map((pt) => [pt.x, pt.y]));
  const result = [];
  let run = [];
  for (let minute = start; minute <= now; minute++) {
    const value = byMinute.has(minute) ? byMinute.get(minute) : (counts ? 0 : null);
    if (value === null) { if (run.length) result.push(run); run = []; continue; }
    run.push({ x: minute, y: value });
  }
  if (run.length) result.push(run);
  return result;
}

// One line per series (a provider, a stage) over the last hour; x = minute, y = value.
function drawChart(id, series, pick, { counts = false } = {}) {
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
  const maxY = niceMax(Math.max(0, ...lines.flatMap((l) => l.points.map((pt) => pt.y))));
  const pad = { left: 44, right: 8, top: 8, bottom: 18 };
  const x = (minute) => pad.left + ((minute - start) / 60) * (width - pad.left - pad.right);
  const y = (value) => height - pad.bottom - (value / maxY) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = "#2b3640"; ctx.fillStyle = "#8a96a3"; ctx.font = "11px system-ui"; ctx.lineWidth = 1;
  const labels = [];
  for (let i = 0; i <= 4; i++) {
    const value = (maxY * i) / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, y(value)); ctx.lineTo(width - pad.right, y(value)); ctx.stroke();
    labels.push(label(value));
    ctx.fillText(labels[i], 2, y(value) + 4);
  }
  ctx.fillText("-60 min", pad.left, height - 4);
  ctx.fillText("now", width - pad.right - 22, height - 4);
  let drawn = 0, segments = 0;
  for (const line of lines) {
    ctx.strokeStyle = ctx.fillStyle = COLORS[line.name] || "#e6e6e6";
    ctx.lineWidth = 2;
    if (!line.points.length) continue; // nothing this hour: no line along the floor
    for (const run of runs(line.points, start, now, counts)) {
      // Steps: a minute's value holds from its start to its end, so a lone minute is a
      // plateau and a burst is a block, never a dot or a needle.
      ctx.beginPath();
      ctx.moveTo(x(run[0].x), y(run[0].y));
      for (const pt of run) {
        ctx.lineTo(x(pt.x), y(pt.y));
        ctx.lineTo(x(pt.x + 1), y(pt.y));
      }
      ctx.stroke();
      segments += run.length;
    }
    drawn += line.points.length;
  }
  canvas.dataset.points = String(drawn);
  canvas.dataset.segments = String(segments);
  canvas.dataset.axis = labels.join(" ");
  const legend = canvas.nextElementSibling;
  legend.replaceChildren(...lines.map((l) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[l.name] || "#e6e6e6";
    item.append(swatch, l.name.replace("_", "-"));
    return item;
  }));
}

// One job across the group (GET /jobs/{id}): where it is, its attempts, lineage, time line.
async function showJob(id) {
  const box = document.getElementById("job");
  box.hidden = false;
  const title = document.createElement("h2");
  const response = await fetch(`/jobs/${encodeURIComponent(id)}`, { headers: { Accept: "application/json" } });
  const job = await response.json().catch(() => ({}));
  if (!response.ok) {
    title.textContent = `Job ${id}`;
    const message = document.createElement("p");
    message.textContent = (job.error && job.error.message) || `HTTP ${response.status}`;
    box.dataset.state = "not_found";
    box.replaceChildren(title, message);
    return;
  }
  box.dataset.state = job.state;
  title.append(`Job ${job.job_id} `, badge(job.state));
  const facts = document.createElement("p");
  facts.textContent = `${job.detail} · trace ${job.trace_id || "none"}`;
  const attempts = document.createElement("table");
  const head = attempts.createTHead().insertRow();
  for (const name of ["provider", "model", "try", "outcome", "latency ms", "tokens in / out", "cost USD"]) {
    head.appendChild(document.createElement("th")).textContent = name;
  }
  const rows = attempts.createTBody();
  for (const a of job.attempts) {
    const row = rows.insertRow();
    cell(row, a.provider + (a.lane === "batch" ? " (batch)" : ""));
    cell(row, a.model);
    cell(row, String(a.attempt), true);
    cell(row, a.outcome + (a.error_type ? ` (${a.error_type})` : ""));
    cell(row, fmt(a.latency_ms, 0), true);
    cell(row, `${a.usage.input_tokens} / ${a.usage.output_tokens}`, true);
    cell(row, fmt(a.usage.cost_usd, 6), true);
  }
  const timeline = document.createElement("table");
  timeline.className = "timeline";
  for (const e of job.timeline) {
    const row = timeline.insertRow();
    cell(row, new Date(e.at).toLocaleTimeString());
    cell(row, e.event);
  }
  const lineage = document.createElement("p");
  lineage.className = "muted";
  lineage.textContent = `records: ${job.lineage.join(" → ")}`;
  box.replaceChildren(title, facts, attempts, lineage, timeline);
}

function searchJobs() {
  const form = document.getElementById("job-search");
  const input = form.elements.namedItem("job");
  const find = (id) => showJob(id).catch((error) => showError(String(error)));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (!id) return;
    history.replaceState(null, "", `?job=${encodeURIComponent(id)}`);
    find(id);
  });
  const asked = new URLSearchParams(window.location.search).get("job");
  if (asked) { input.value = asked; find(asked); }
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
    renderTenants(status.tenants);
    renderFailures(statistics.recent_failures);
    const series = statistics.per_minute;
    drawChart("chart-success", series, (m) => (m.success_rate === null ? null : m.success_rate * 100));
    drawChart("chart-latency", series, (m) => m.latency_ms.p95);
    drawChart("chart-throughput", series, (m) => m.calls, { counts: true });
    drawChart("chart-cost", series, (m) => m.cost_usd, { counts: true });
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(String(error));
  }
}

function interval(found) {
  if (!found) return "–";
  return `${fmt(found.mean, 3)} [${fmt(found.low, 3)}, ${fmt(found.high, 3)}]`;
}

function candidateBlock(report) {
  const block = document.createElement("div");
  block.className = "candidate";
  const title = document.createElement("h3");
  title.textContent = `${report.candidate} against ${report.production.models.join(", ")}`;
  block.appendChild(title);
  const saving = report.projected_monthly_saving_usd;
  const tiles = document.createElement("div");
  tiles.className = "tiles";
  tiles.append(
    tile(report.compared, `compared of ${report.jobs} sampled (${report.dropped} dropped)`),
    tile(fmt(report.invalid_rate, 3), "invalid-answer rate"),
    tile(fmt(report.failure_rate, 3), "failure rate"),
    tile(saving === null ? "–" : `$${saving.toLocaleString(undefined, { maximumFractionDigits: 2 })}`,
      "projected monthly saving"),
  );
  block.appendChild(tiles);
  const sides = document.createElement("table");
  sides.innerHTML = "<thead><tr><th></th><th class='num'>production</th><th class='num'>candidate</th></tr></thead>";
  const sideRows = sides.createTBody();
  for (const [name, key, digits] of [["latency p50 ms", "latency_p50_ms", 1], ["latency p95 ms", "latency_p95_ms", 1],
    ["USD per 1,000 jobs", "cost_per_1000_usd", 4]]) {
    const row = sideRows.insertRow();
    cell(row, name);
    cell(row, fmt(report.production[key], digits), true);
    cell(row, fmt(report.shadow[key], digits), true);
  }
  block.appendChild(sides);
  const fields = document.createElement("table");
  fields.className = "agreement";
  fields.innerHTML = "<thead><tr><th>field</th><th class='num'>agreement [95% interval]</th><th></th><th>method</th></tr></thead>";
  const fieldRows = fields.createTBody();
  for (const [path, found] of [["overall", report.overall], ...Object.entries(report.fields)]) {
    const row = fieldRows.insertRow();
    cell(row, path);
    cell(row, interval(found), true);
    const bar = document.createElement("span");
    bar.className = "agree";
    bar.style.width = `${Math.round((found ? found.mean : 0) * 120)}px`;
    cell(row, bar);
    cell(row, found ? found.method : "");
  }
  block.appendChild(fields);
  return block;
}

async function refreshShadow() {
  try {
    const comparison = await getJSON("/shadow?days=7");
    const section = document.getElementById("shadow");
    section.hidden = comparison.candidates.length === 0;
    document.getElementById("shadow-candidates").replaceChildren(...comparison.candidates.map(candidateBlock));
    document.body.dataset.shadowReady = "true";
  } catch (error) {
    showError(String(error));
  }
}

function moves(found) {
  const values = [...new Set([...Object.keys(found.reference), ...Object.keys(found.current)])];
  const change = (v) => (found.current[v] || 0) - (found.reference[v] || 0);
  values.sort((a, b) => Math.abs(change(b)) - Math.abs(change(a)));
  return values.slice(0, 3)
    .map((v) => `${v} ${fmt(found.reference[v] || 0, 2)} → ${fmt(found.current[v] || 0, 2)}`).join(", ");
}

async function refreshDrift() {
  try {
    const drift = await getJSON("/drift");
    const known = drift.fields.filter((found) => found.psi !== null);
    document.getElementById("drift").hidden = known.length === 0;
    const rows = known.map((found) => {
      const row = document.createElement("tr");
      cell(row, found.field);
      cell(row, fmt(found.psi, 3), true);
      cell(row, found.status === "stable" ? found.status : badge(found.status));
      cell(row, moves(found));
      return row;
    });
    document.querySelector("#drift-fields tbody").replaceChildren(...rows);
    document.body.dataset.driftReady = "true";
  } catch (error) {
    showError(String(error));
  }
}

searchJobs();
refresh();
setInterval(refresh, REFRESH_MS);
// Read from the topic on each ask (not from the tables): less often.
refreshShadow();
setInterval(refreshShadow, 6 * REFRESH_MS);
refreshDrift();
setInterval(refreshDrift, 6 * REFRESH_MS);
