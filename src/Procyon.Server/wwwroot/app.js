// The Procyon console: the databases and their functions, a call form generated from each
// function's parameter types (or raw JSON), tables and a SQL box, and for a database's owner its
// scheduler, charts of its activity and its live logs. Results of every database arrive live
// through the SignalR hub. The token stays in this tab's sessionStorage.
"use strict";

const $ = (id) => document.getElementById(id);
const make = Forms.make;
const TokenKey = "procyon.token";

const state = { token: sessionStorage.getItem(TokenKey) ?? "", databases: [], schemas: {}, paths: {}, db: null, form: null, raw: false, owner: false, hub: null, logs: null, timers: [], charts: [], turn: 0 };

function request(path, options = {}) {
  const headers = { ...(options.body === undefined ? {} : { "Content-Type": "application/json" }), ...(state.token ? { Authorization: `Bearer ${state.token}` } : {}) };
  return fetch(path, { ...options, headers });
}

const dbPath = (db, rest) => `/v1/databases/${encodeURIComponent(db)}${rest}`;
const resolve = (schema) => (schema?.$ref ? resolve(state.schemas[schema.$ref.split("/").pop()]) : schema ?? {});
const quote = (name) => `"${name.replace(/"/g, '""')}"`;
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");

// ---- databases and the call form ----

async function loadDatabases() {
  const [databases, openApi] = await Promise.all([(await fetch("/v1/databases")).json(), (await fetch("/swagger/v1/swagger.json")).json()]);
  state.databases = databases;
  state.schemas = openApi.components?.schemas ?? {};
  state.paths = openApi.paths ?? {};
  // Subscribe before showing the functions, so no result of a call made from here is missed.
  await Promise.all(databases.map((database) => state.hub.invoke("Subscribe", database.db, null)));
  const list = $("databases");
  list.replaceChildren();
  for (const database of databases) {
    const title = make("li", { className: "db", textContent: database.db, onclick: () => selectDatabase(database.db) });
    title.dataset.db = database.db;
    list.append(title);
    // Lifecycle reducers are the server's to run, not callers'.
    for (const fn of database.functions.filter((f) => !["initreducer", "clientconnected", "clientdisconnected"].includes(f.kind))) {
      const item = make("li", { className: "fn", textContent: `${fn.name}(${fn.params.map((p) => p.name).join(", ")})` });
      item.dataset.db = database.db;
      item.dataset.fn = fn.name;
      item.onclick = () => selectFunction(database, fn, item);
      list.append(item);
    }
  }
  if (databases.length === 0) list.textContent = "No databases are published yet.";
  if (state.db && databases.some((d) => d.db === state.db)) await selectDatabase(state.db);
}

async function selectFunction(database, fn, item) {
  document.querySelectorAll(".fn").forEach((el) => el.classList.remove("selected"));
  item.classList.add("selected");
  $("db").value = database.db;
  $("fn").value = fn.name;
  $("signature").textContent = `${database.db}.${fn.name}(${fn.params.map((p) => `${p.name}: ${p.type}`).join(", ")}) -> ${fn.returns}`;
  const body = state.paths[dbPath(database.db, `/call/${fn.name}`)]?.post?.requestBody?.content?.["application/json"]?.schema;
  state.form = Forms.forParameters(resolve, fn.params, body);
  $("form").replaceChildren(state.form.node);
  $("args").value = JSON.stringify(state.form.read());
  if (state.db !== database.db) await selectDatabase(database.db);
}

function showTab(raw) {
  if (raw && state.form) $("args").value = JSON.stringify(state.form.read(), null, 1);
  state.raw = raw;
  $("raw").hidden = !raw;
  $("form").hidden = raw;
  $("tab-json").classList.toggle("active", raw);
  $("tab-form").classList.toggle("active", !raw);
}

async function call() {
  let body;
  try {
    body = state.raw || !state.form ? $("args").value : JSON.stringify(state.form.read());
  } catch (error) {
    $("response").textContent = `not JSON: ${error.message}`;
    return;
  }
  const response = await request(dbPath($("db").value, `/call/${encodeURIComponent($("fn").value)}`), { method: "POST", body });
  $("response").textContent = `${response.status}\n${await response.text()}`;
}

// ---- the selected database: tables, SQL, scheduler, charts, logs ----

async function selectDatabase(db) {
  // A later selection (or a reload of the list) supersedes this one at its next await.
  const turn = ++state.turn;
  state.db = db;
  document.querySelectorAll(".db").forEach((el) => el.classList.toggle("selected", el.dataset.db === db));
  $("tables-db").textContent = db;
  state.timers.forEach(clearInterval);
  state.logs?.dispose();
  state.logs = null;
  $("logs").replaceChildren();
  const owner = (await request(dbPath(db, "/activity"))).ok;
  if (turn !== state.turn) return;
  state.owner = owner;
  await showTables();
  if (turn !== state.turn) return;
  if (!state.owner) {
    for (const id of ["scheduler", "charts"]) $(id).textContent = state.token ? "Only the owner sees this: the token is another identity's." : "Only the owner sees this: use the owner's token.";
    $("logs").replaceChildren(make("li", { className: "muted", textContent: "Logs are the owner's." }));
    return;
  }
  state.logs = state.hub.stream("Logs", db, null, 100).subscribe({
    next: (line) => $("logs").prepend(make("li", { className: line.level, textContent: `${when(line.time)} ${line.level} ${line.message}` })),
    error: (error) => $("logs").prepend(make("li", { className: "error", textContent: `logs ended: ${error}` })),
    complete: () => {},
  });
  await Promise.all([showScheduler(), showActivity()]);
  if (turn !== state.turn) return;
  state.timers = [setInterval(showScheduler, 2000), setInterval(() => Promise.all([showActivity(), showTables()]), 5000)];
}

async function showTables() {
  const database = state.databases.find((d) => d.db === state.db);
  const readable = database.tables.filter((t) => t.public || state.owner);
  const rows = make("tbody");
  for (const table of database.tables) {
    const cell = make("td", { textContent: readable.includes(table) ? "…" : "private" });
    cell.dataset.table = table.name;
    rows.append(make("tr", {}, make("td", { textContent: table.name }), make("td", { textContent: table.public ? "public" : "private" }), cell));
  }
  $("tables").replaceChildren(make("thead", {}, make("tr", {}, ...["table", "access", "rows"].map((h) => make("th", { textContent: h })))), rows);
  if (readable.length === 0) return;
  // One query; rows counted up to 100,000 each so a huge table costs no more than that.
  const sql = readable.map((t) => `SELECT '${t.name}' AS name, (SELECT count(*) FROM (SELECT FROM ${quote(t.name)} LIMIT 100001) AS capped) AS n`).join(" UNION ALL ");
  const answer = await (await request(dbPath(state.db, "/sql"), { method: "POST", body: sql })).json();
  for (const [name, n] of answer.rows ?? []) {
    document.querySelector(`#tables td[data-table="${name}"]`).textContent = Number(n) > 100000 ? "100,000+" : String(n);
  }
}

async function runSql() {
  const response = await request(dbPath(state.db ?? $("db").value, "/sql"), { method: "POST", body: $("sql").value });
  const answer = await response.json();
  if (!response.ok) {
    $("sql-result").replaceChildren(make("pre", { className: "error", textContent: `${response.status} ${answer.detail ?? ""}` }));
    return;
  }
  const head = make("tr", {}, ...answer.columns.map((c) => make("th", { textContent: c.name ?? c })));
  const rows = answer.rows.map((row) => make("tr", {}, ...row.map((v) => make("td", { textContent: JSON.stringify(v) }))));
  $("sql-result").replaceChildren(make("table", {}, make("thead", {}, head), make("tbody", {}, ...rows)), make("div", { className: "muted", textContent: `${answer.rows.length} rows${answer.truncated ? " (truncated)" : ""}` }));
}

async function showScheduler() {
  const response = await request(dbPath(state.db, "/scheduler"));
  if (!response.ok) return;
  const tables = await response.json();
  const view = tables.map((t) => {
    const runs = (list, empty) => (list.length === 0 ? [make("li", { className: "muted", textContent: empty })] : list.map((run) =>
      make("li", { className: run.status, textContent: `#${run.scheduledId} ${run.status} at ${when(run.startedAt)}, ${run.latenessMs.toFixed(1)} ms late, took ${run.durationMicros} µs${run.error ? `: ${run.error}` : ""}` })));
    const summary = make("div", { className: "pending", textContent: `${t.pending}${t.more ? "+" : ""} pending, next due ${when(t.nextDue)}` });
    const block = make("div", {}, make("h3", { textContent: `${t.table} → ${t.function} (${t.kind})` }), summary,
      make("label", { textContent: "recent runs" }), make("ul", { className: "feed runs" }, ...runs(t.recent, "none yet")),
      make("label", { textContent: "failures" }), make("ul", { className: "feed failures" }, ...runs(t.failures, "none")));
    block.dataset.table = t.table;
    return block;
  });
  $("scheduler").replaceChildren(...(view.length ? view : [make("span", { textContent: "No scheduled tables." })]));
}

async function showActivity() {
  const response = await request(dbPath(state.db, "/activity"));
  if (!response.ok) return;
  const activity = await response.json();
  const x = activity.points.map((p) => Date.parse(p.at) / 1000);
  const per = activity.bucketSeconds;
  const series = [
    { title: "calls/s", lines: [["calls", "#0b57d0", (p) => p.calls / per], ["errors", "#cf222e", (p) => p.errors / per]] },
    { title: "duration (ms)", lines: [["p50", "#1a7f37", (p) => p.p50Ms], ["p99", "#9a6700", (p) => p.p99Ms]] },
    { title: "scheduler lateness (ms)", lines: [["p99", "#8250df", (p) => p.latenessP99Ms], ["runs/s", "#6e7781", (p) => p.scheduledRuns / per]] },
  ];
  const data = series.map((s) => [x, ...s.lines.map(([, , pick]) => activity.points.map(pick))]);
  if (state.charts.length === 0 || !state.charts[0].root.isConnected) {
    $("charts").replaceChildren();
    const width = Math.max(280, $("charts").clientWidth);
    state.charts = series.map((s, i) => new uPlot({
      title: s.title, width, height: 150,
      series: [{}, ...s.lines.map(([label, stroke]) => ({ label, stroke, points: { show: true, size: 4 } }))],
      axes: [{}, { size: 50 }],
    }, data[i], $("charts")));
  } else {
    state.charts.forEach((chart, i) => chart.setData(data[i]));
  }
  $("charts").dataset.calls = String(activity.points.reduce((sum, p) => sum + p.calls, 0));
}

// ---- the hub, the token and the live feed ----

function show(result) {
  const outcome = result.status === "ok" ? JSON.stringify(result.value) : result.error;
  $("feed").prepend(make("li", { className: result.status, textContent: `${result.db}.${result.fn} [${result.origin}] ${result.status}: ${outcome} (${result.durationMicros} µs)` }));
}

// The identity a token names (its subject); the server checks the token, this only shows it.
function subject(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub.slice(0, 16) + "…";
  } catch {
    return "a token that is not a JWT";
  }
}

async function connect() {
  await state.hub?.stop();
  state.charts = [];
  state.hub = new signalR.HubConnectionBuilder()
    .withUrl("/hubs/procyon", { accessTokenFactory: () => state.token })
    .withAutomaticReconnect()
    .build();
  state.hub.on("Result", show);
  state.hub.onreconnected(() => loadDatabases());
  await state.hub.start();
  await loadDatabases();
  $("whoami").textContent = state.token ? `as ${subject(state.token)}` : "anonymous";
  $("status").textContent = "live";
}

async function useToken() {
  state.token = $("token").value.trim();
  if (state.token) sessionStorage.setItem(TokenKey, state.token);
  else sessionStorage.removeItem(TokenKey);
  $("status").textContent = "connecting…";
  await connect();
}

$("token").value = state.token;
$("use-token").onclick = () => useToken().catch((error) => { $("status").textContent = `offline: ${error}`; });
$("call").onclick = call;
$("run-sql").onclick = runSql;
$("tab-form").onclick = () => showTab(false);
$("tab-json").onclick = () => showTab(true);
connect().catch((error) => { $("status").textContent = `offline: ${error}`; });
