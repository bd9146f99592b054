// The console page: each panel polls its JSON endpoint and redraws; charts are drawn with Plotly.
"use strict";

// ?results_schema=... points the charts and the results view at another schema of the results database.
const resultsSchema = new URLSearchParams(location.search).get("results_schema");
const inSchema = (query) => { if (resultsSchema) query.set("schema", resultsSchema); return query; };

async function getJson(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.onclick = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? "-"));
  return node;
}

function table(id, columns, rows, onRowClick) {
  const target = document.getElementById(id);
  const head = el("tr", {}, ...columns.map(([label]) => el("th", {}, label)));
  const body = rows.map((row) => {
    const cells = columns.map(([, render, cls]) => {
      const value = render(row);
      return el("td", cls ? { class: cls } : {}, value instanceof Node ? value : value ?? "-");
    });
    return el("tr", onRowClick ? { class: "clickable", onclick: () => onRowClick(row) } : {}, ...cells);
  });
  target.replaceChildren(head, ...(rows.length ? body : [el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "none"))]));
}

function failed(id, error) {
  document.getElementById(id).replaceChildren(el("tr", {}, el("td", { class: "error" }, error.message)));
}

const number = (value) => (value === null || value === undefined ? "-" : Number(value).toLocaleString("en-US"));
const bytes = (value) => (value === null || value === undefined ? "-" : `${(value / 1048576).toFixed(1)} MiB`);
const state = (text) => el("span", { class: `state-${text}` }, text);

async function refreshOverview() {
  const o = await getJson("/api/overview");
  document.getElementById("overview").textContent =
    `Kafka ${o.bootstrap_servers}${o.secure ? " (secured)" : ""} · registry ${o.registry} · Spark ${o.spark_master}` +
    ` · results ${o.results_database}`;
}

async function refreshTopics() {
  try {
    const topics = await getJson("/api/topics");
    table("topics-table", [
      ["topic", (t) => t.topic],
      ["partitions", (t) => t.partitions, "num"],
      ["replication", (t) => t.replication_factor, "num"],
      ["messages", (t) => number(t.messages), "num"],
      ["end offsets", (t) => t.partition_detail.map((p) => `${p.partition}:${p.end_offset}`).join(" ")],
      ["leaders / in-sync", (t) => t.partition_detail.map((p) => `${p.leader}/${p.isr.join(",")}`).join(" ")],
      ["size", (t) => bytes(t.size_bytes), "num"],
      ["configs", (t) => Object.entries(t.config).map(([k, v]) => `${k}=${v}`).join(", ")],
    ], topics, (t) => showMessages(t.topic));
    const select = document.getElementById("messages-topic");
    const chosen = select.value;
    select.replaceChildren(...topics.map((t) => el("option", { value: t.topic }, t.topic)));
    if (chosen) select.value = chosen;
  } catch (error) { failed("topics-table", error); }
}

async function refreshGroups() {
  try {
    table("groups-table", [
      ["group", (g) => g.group], ["topic", (g) => g.topic], ["partition", (g) => g.partition, "num"],
      ["committed", (g) => number(g.committed), "num"], ["end", (g) => number(g.end), "num"],
      ["lag", (g) => number(g.lag), "num"],
      ["behind", (g) => (g.behind_s === null ? "-" : `${Math.round(g.behind_s)} s`), "num"],
    ], await getJson("/api/groups"));
  } catch (error) { failed("groups-table", error); }
}

async function showMessages(topic) {
  const select = document.getElementById("messages-topic");
  if (topic) select.value = topic;
  const limit = document.getElementById("messages-limit").value;
  try {
    const messages = await getJson(`/api/topics/${encodeURIComponent(select.value)}/messages?limit=${limit}`);
    table("messages-table", [
      ["partition", (m) => m.partition, "num"], ["offset", (m) => m.offset, "num"], ["timestamp", (m) => m.timestamp],
      ["key", (m) => JSON.stringify(m.key)],
      ["value", (m) => el("code", { class: "value" }, m.error ? `undecodable: ${m.error}` : JSON.stringify(m.value))],
    ], messages);
    if (topic) location.hash = "messages";
  } catch (error) { failed("messages-table", error); }
}

async function refreshSubjects() {
  try {
    const subjects = await getJson("/api/subjects");
    table("subjects-table", [
      ["subject", (s) => s.subject], ["versions", (s) => s.versions.join(", ")],
      ["compatibility", (s) => s.compatibility], ["latest schema id", (s) => s.latest_id, "num"],
    ], subjects, (s) => {
      document.getElementById("diff-subject").value = s.subject;
      const versions = s.versions;
      document.getElementById("diff-old").value = versions[Math.max(0, versions.length - 2)];
      document.getElementById("diff-new").value = versions[versions.length - 1];
      showDiff();
    });
    const select = document.getElementById("diff-subject");
    const chosen = select.value;
    select.replaceChildren(...subjects.map((s) => el("option", { value: s.subject }, s.subject)));
    if (chosen) select.value = chosen;
  } catch (error) { failed("subjects-table", error); }
}

async function showDiff() {
  const subject = document.getElementById("diff-subject").value;
  const old = document.getElementById("diff-old").value, next = document.getElementById("diff-new").value;
  const output = document.getElementById("diff-output");
  try {
    const { diff } = await getJson(`/api/subjects/${encodeURIComponent(subject)}/diff?old=${old}&new=${next}`);
    output.replaceChildren(...diff.split("\n").map((line) =>
      el("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, `${line}\n`)));
  } catch (error) { output.textContent = error.message; }
}

async function refreshQueries() {
  try {
    const [{ queries, error, topic }, spark] = await Promise.all([getJson("/api/queries"), getJson("/api/spark")]);
    const apps = spark.apps.map((a) => `${a.name} (${a.id}, ${a.cores} cores)`).join("; ") || "no application running";
    const workers = spark.workers.map((w) => `${w.id.split("-").slice(-1)} ${w.state} ${w.cores_used}/${w.cores} cores`).join("; ");
    document.getElementById("spark-summary").textContent =
      `${spark.error || ""} Applications: ${apps}. Workers: ${workers || "none"}. Progress from topic ${topic}${error ? ` (${error})` : ""}.`;
    table("queries-table", [
      ["query", (q) => q.query], ["application", (q) => q.application], ["state", (q) => state(q.state)],
      ["batch", (q) => q.batch, "num"], ["rows in", (q) => number(q.input_rows), "num"],
      ["input rows/s", (q) => number(q.input_rate), "num"], ["processed rows/s", (q) => number(q.processing_rate), "num"],
      ["batch ms", (q) => number(q.batch_ms), "num"], ["watermark", (q) => q.watermark],
      ["late rows (Spark)", (q) => number(q.dropped_late), "num"], ["late rides", (q) => number(q.late_rides), "num"],
      ["state rows", (q) => number(q.state_rows), "num"],
      ["last report", (q) => q.at], ["error", (q) => q.error],
    ], queries);
  } catch (error) { failed("queries-table", error); }
}

async function refreshConnectors() {
  try {
    const { running, connectors, error } = await getJson("/api/connectors");
    if (!running) {
      document.getElementById("connectors-table").replaceChildren(
        el("tr", {}, el("td", { class: "muted" }, "Kafka Connect is not running (CONNECT=1 make up starts it)")));
      return;
    }
    if (error) throw new Error(error);
    table("connectors-table", [
      ["connector", (c) => c.name], ["type", (c) => c.kind], ["state", (c) => state(c.state)],
      ["tasks", (c) => c.tasks.join(", ")], ["error", (c) => c.trace && c.trace.split("\n")[0]],
    ], connectors);
  } catch (error) { failed("connectors-table", error); }
}

const chartLayout = (extra) => ({ margin: { t: 10, r: 10, b: 60, l: 50 }, legend: { orientation: "h" }, ...extra });

async function refreshCharts() {
  const query = inSchema(new URLSearchParams()).toString();
  try {
    const v = await getJson(`/api/charts/vendor-counts?${query}`);
    document.getElementById("vendor-source").textContent = v.error ?? `${v.table}, latest ${v.windows.length} windows`;
    const traces = v.series.map((s) => ({ type: "bar", name: s.name, x: v.windows, y: s.rides }));
    Plotly.react("vendor-chart", traces, chartLayout({ barmode: "stack", yaxis: { title: { text: "rides" } } }), { displayModeBar: false });
  } catch (error) { document.getElementById("vendor-source").textContent = error.message; }
  try {
    const z = await getJson(`/api/charts/top-zones?${query}`);
    document.getElementById("zones-source").textContent = z.error ?? `${z.table}, window ${z.window_start ?? "-"}`;
    const zones = [...z.zones].reverse();
    Plotly.react("zones-chart", [{ type: "bar", orientation: "h", x: zones.map((e) => e.rides), y: zones.map((e) => e.label) }],
      chartLayout({ margin: { t: 10, r: 10, b: 40, l: 220 }, xaxis: { title: { text: "rides" } } }), { displayModeBar: false });
  } catch (error) { document.getElementById("zones-source").textContent = error.message; }
}

async function refreshOperations() {
  try {
    table("alerts-table", [
      ["alert", (a) => a.alert], ["severity", (a) => a.severity], ["state", (a) => state(a.state)],
      ["since", (a) => a.since], ["summary", (a) => a.summary],
    ], await getJson("/api/alerts"));
    if (!document.querySelector("#alerts-table td")) failed("alerts-table", new Error("no alert active"));
  } catch (error) { failed("alerts-table", error); }
  for (const name of ["throughput", "lag", "batch_duration"]) {
    try {
      const c = await getJson(`/api/operations/charts/${name}`);
      const traces = c.series.map((s) => ({ type: "scatter", mode: "lines", name: s.name, x: s.x, y: s.y }));
      Plotly.react(`${name}-chart`, traces, chartLayout({}), { displayModeBar: false });
    } catch (error) { document.getElementById(`${name}-chart`).textContent = error.message; }
  }
}

async function refreshWebUis() {
  try {
    const links = await getJson("/api/web-uis");
    document.getElementById("web-uis").replaceChildren(
      "Web UIs: ", ...links.flatMap((l, i) => [i ? " · " : "", el("a", { href: l.url, target: "_blank" }, l.name)]));
  } catch (error) { document.getElementById("web-uis").textContent = error.message; }
}

let resultQueries = [];

async function loadResultQueries() {
  try {
    resultQueries = await getJson("/api/results/queries");
    const select = document.getElementById("results-query");
    select.replaceChildren(...resultQueries.map((q) => el("option", { value: q.name }, q.name)));
    select.onchange = showResultParams;
    showResultParams();
  } catch (error) { failed("results-table", error); }
}

function showResultParams() {
  const query = resultQueries.find((q) => q.name === document.getElementById("results-query").value);
  if (!query) return;
  document.getElementById("results-description").textContent = query.description;
  document.getElementById("results-params").replaceChildren(...Object.entries(query.params).map(([name, value]) =>
    el("label", {}, `${name} `, el("input", { "data-param": name, value: String(value), size: "6" }))));
}

async function runResultQuery() {
  const name = document.getElementById("results-query").value;
  const given = inSchema(new URLSearchParams());
  for (const input of document.querySelectorAll("#results-params input")) given.set(input.dataset.param, input.value);
  try {
    const r = await getJson(`/api/results/queries/${encodeURIComponent(name)}?${given}`);
    table("results-table", r.columns.map((column, i) => [column, (row) => row[i], typeof r.rows[0]?.[i] === "number" ? "num" : ""]), r.rows);
    if (r.truncated) document.getElementById("results-table").append(el("tr", {}, el("td", { class: "muted" }, "more rows not shown")));
  } catch (error) { failed("results-table", error); }
}

function every(ms, refresh) { refresh(); setInterval(refresh, ms); }

document.getElementById("messages-form").onsubmit = (event) => { event.preventDefault(); showMessages(); };
document.getElementById("diff-form").onsubmit = (event) => { event.preventDefault(); showDiff(); };
document.getElementById("results-form").onsubmit = (event) => { event.preventDefault(); runResultQuery(); };
loadResultQueries();
refreshOverview();
every(2000, refreshCharts);
every(3000, refreshQueries);
every(10000, refreshOperations);
every(10000, refreshWebUis);
every(5000, refreshTopics);
every(5000, refreshGroups);
every(15000, refreshSubjects);
every(10000, refreshConnectors);
