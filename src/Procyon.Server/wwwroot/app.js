// The Procyon console: lists databases and their functions, calls one with JSON arguments
// over HTTP, and shows every result of the databases live through the SignalR hub.
"use strict";

const $ = (id) => document.getElementById(id);

function example(type) {
  if (/^[iu](8|16|32|64|128)$/.test(type)) return 1;
  if (type === "f32" || type === "f64") return 1.5;
  if (type === "bool") return true;
  if (type === "String") return "text";
  if (type.startsWith("Vec<")) return [];
  if (type.startsWith("Option<")) return null;
  return null;
}

function select(db, fn, item) {
  document.querySelectorAll(".fn").forEach((el) => el.classList.remove("selected"));
  item.classList.add("selected");
  $("db").value = db;
  $("fn").value = fn.name;
  $("signature").textContent = `${fn.name}(${fn.params.map((p) => `${p.name}: ${p.type}`).join(", ")}) -> ${fn.returns}`;
  $("args").value = JSON.stringify(fn.params.map((p) => example(p.type)));
}

async function loadDatabases(hub) {
  const databases = await (await fetch("/v1/databases")).json();
  // Subscribe before showing the functions, so no result of a call made from here is missed.
  await Promise.all(databases.map((database) => hub.invoke("Subscribe", database.db, null)));
  const list = $("databases");
  list.replaceChildren();
  for (const database of databases) {
    const title = document.createElement("li");
    title.className = "db";
    title.textContent = database.db;
    list.append(title);
    for (const fn of database.functions.filter((f) => f.kind !== "initreducer")) {
      const item = document.createElement("li");
      item.className = "fn";
      item.dataset.db = database.db;
      item.dataset.fn = fn.name;
      item.textContent = `${fn.name}(${fn.params.map((p) => p.name).join(", ")})`;
      item.onclick = () => select(database.db, fn, item);
      list.append(item);
    }
  }
  if (databases.length === 0) list.textContent = "No databases are published yet.";
}

function show(result) {
  const item = document.createElement("li");
  item.className = result.status;
  const outcome = result.status === "ok" ? JSON.stringify(result.value) : result.error;
  item.textContent = `${result.db}.${result.fn} [${result.origin}] ${result.status}: ${outcome} (${result.durationMicros} µs)`;
  $("feed").prepend(item);
}

async function call() {
  const response = await fetch(`/v1/databases/${encodeURIComponent($("db").value)}/call/${encodeURIComponent($("fn").value)}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: $("args").value,
  });
  $("response").textContent = `${response.status}\n${await response.text()}`;
}

async function start() {
  const hub = new signalR.HubConnectionBuilder().withUrl("/hubs/procyon").withAutomaticReconnect().build();
  hub.on("Result", show);
  hub.onreconnected(() => loadDatabases(hub));
  await hub.start();
  $("call").onclick = call;
  await loadDatabases(hub);
  $("status").textContent = "live";
}

start().catch((error) => { $("status").textContent = `offline: ${error}`; });
