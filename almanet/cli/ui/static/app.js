// almanet ui: the live catalog of the bus. Plain DOM, no framework, no build step.
// Every request carries the per-run token that `almanet ui` printed in the page's address.
import { el, field } from "./form.js";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const state = { settings: null, cards: new Map(), timer: null };

// ------------------------------------------------------------------ small helpers

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

async function api(path, body) {
  const init = { headers: { "X-Almanet-Token": TOKEN } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = { error: `${response.status} ${response.statusText}` };
  }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

function uptime(seconds) {
  if (seconds === null || seconds === undefined) return "?";
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d${String(h).padStart(2, "0")}h`;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

function setStatus(text, bad = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("bad", bad);
}

// ------------------------------------------------------------------ "try it"

function tryIt(procedure) {
  const schema = procedure.payload_json_schema;
  const usable = schema && typeof schema === "object" && Object.keys(schema).length > 0;
  const form = usable ? field(schema, schema, "", true) : null;
  const raw = el("textarea", { class: "raw", rows: "5", spellcheck: "false", hidden: !!form, text: "null" });
  const toggle = el("input", { type: "checkbox", class: "raw-toggle", checked: !form, disabled: !form });
  const outcome = el("div", { class: "outcome" });
  const button = el("button", { type: "submit", text: "Call" });
  toggle.addEventListener("change", () => {
    if (toggle.checked) {
      try { raw.value = pretty(form.read() ?? null); } catch (_) { /* keep what the user had */ }
    }
    raw.hidden = !toggle.checked;
    if (form) form.node.hidden = toggle.checked;
  });
  const submit = async (event) => {
    event.preventDefault();
    let payload;
    try {
      payload = toggle.checked ? JSON.parse(raw.value || "null") : form.read();
    } catch (error) {
      showOutcome(outcome, "bad", "invalid input", error.message);
      return;
    }
    if (payload === undefined) payload = null;
    button.disabled = true;
    showOutcome(outcome, "wait", "calling…", "");
    try {
      const result = await api("/api/call", { uri: procedure.uri, payload });
      const took = `${result.elapsed_ms} ms`;
      if (result.ok) showOutcome(outcome, "ok", `reply in ${took}`, pretty(result.payload));
      else if (result.error.reason) showOutcome(outcome, "bad", `${result.error.name} (${result.error.reason.replace("_", " ")}) after ${took}`, result.error.args.join("\n"));
      else showOutcome(outcome, "bad", `${result.error.name} after ${took}`, result.error.args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join("\n"));
    } catch (error) {
      showOutcome(outcome, "bad", "request failed", error.message);
    } finally {
      button.disabled = false;
    }
  };
  return el("form", { class: "try", novalidate: true, onsubmit: submit },
    el("h4", { text: "Try it" }),
    form ? form.node : el("p", { class: "muted small", text: "No payload schema: write the payload as JSON." }),
    raw,
    el("div", { class: "actions" }, button, el("label", { class: "inline small" }, toggle, " edit as JSON")),
    outcome);
}

function showOutcome(box, kind, head, body) {
  box.className = `outcome ${kind}`;
  box.replaceChildren(el("div", { class: "head", text: head }), body ? el("pre", { text: body }) : "");
}

// ------------------------------------------------------------------ catalog

function health(procedure) {
  const cells = procedure.nsqd.map((n) =>
    el("tr", { class: n.subscribers === 0 ? "bad" : n.depth > 0 ? "warn" : "" },
      el("td", { text: n.nsqd }), el("td", { text: n.subscribers }), el("td", { text: n.depth }),
      el("td", { text: n.in_flight }), el("td", { text: n.stale })));
  return el("table", { class: "health" },
    el("thead", {}, el("tr", {}, ["nsqd", "subscribers", "depth", "in flight", "stale"].map((h) => el("th", { text: h })))),
    el("tbody", {}, cells));
}

function card(procedure) {
  const key = `${procedure.uri}/${procedure.channel}`;
  const summary = el("div", { class: "summary" });
  const stats = el("div", { class: "stats" });
  const schemas = el("div", { class: "schemas" },
    el("details", {}, el("summary", { text: "payload schema" }), el("pre", { class: "schema payload", text: pretty(procedure.payload_json_schema ?? {}) })),
    el("details", {}, el("summary", { text: "result schema" }), el("pre", { class: "schema result", text: pretty(procedure.return_json_schema ?? {}) })));
  const about = el("div", { class: "about" },
    el("h3", {}, el("code", { text: procedure.uri }), el("span", { class: "channel", text: `channel ${procedure.channel}` })),
    el("p", { class: "description", text: procedure.description || "(no description)" }),
    el("div", { class: "tags" }, (procedure.tags || []).map((t) => el("span", { class: "tag", text: t }))),
    summary, stats, schemas);
  const node = el("article", { class: "procedure", "data-uri": procedure.uri, "data-channel": procedure.channel },
    about, state.settings.read_only ? null : tryIt(procedure));
  return { key, node, summary, stats, schemaText: JSON.stringify(procedure.payload_json_schema ?? null) };
}

function updateCard(entry, procedure) {
  const problems = procedure.problems || [];
  entry.summary.replaceChildren(
    el("span", { class: "instances", text: `${procedure.instances.length} instance${procedure.instances.length === 1 ? "" : "s"}` }),
    ` · ${procedure.subscribers} subscriber${procedure.subscribers === 1 ? "" : "s"} · depth ${procedure.depth} · in flight ${procedure.in_flight}`,
    procedure.stale ? el("span", { class: "bad", text: ` · ${procedure.stale} stale` }) : "",
    problems.length ? el("div", { class: "problems", text: problems.join("; ") }) : "");
  entry.node.classList.toggle("unhealthy", procedure.nsqd.some((n) => n.subscribers === 0));
  entry.stats.replaceChildren(health(procedure));
}

function renderProcedures(procedures) {
  const container = document.getElementById("procedures");
  const seen = new Set();
  for (const procedure of procedures) {
    const key = `${procedure.uri}/${procedure.channel}`;
    seen.add(key);
    let entry = state.cards.get(key);
    // a service redeployed with another payload shape gets a new form; otherwise the form stays as typed
    if (entry && entry.schemaText !== JSON.stringify(procedure.payload_json_schema ?? null)) {
      entry.node.remove();
      entry = undefined;
    }
    if (!entry) {
      entry = card(procedure);
      state.cards.set(key, entry);
    }
    updateCard(entry, procedure);
    container.append(entry.node); // keeps the server's order (by URI)
  }
  // One read without a procedure (a late discovery reply) must not wipe a form being typed:
  // the card stays, marked, and goes after three reads in a row without it.
  for (const [key, entry] of state.cards) {
    entry.missing = seen.has(key) ? 0 : (entry.missing || 0) + 1;
    entry.node.classList.toggle("gone", entry.missing > 0);
    if (entry.missing === 1) {
      entry.summary.replaceChildren(el("span", { class: "bad", text: "no live instance answered the last discovery" }));
    }
    if (entry.missing >= 3) {
      entry.node.remove();
      state.cards.delete(key);
    }
  }
  document.getElementById("procedure-count").textContent = procedures.length;
  applyFilter();
}

function renderInstances(instances) {
  const body = document.querySelector("#instances tbody");
  body.replaceChildren(...instances.map((i) =>
    el("tr", { "data-instance": i.instance },
      el("td", { text: i.prepath || "-" }), el("td", {}, el("code", { title: i.instance, text: i.instance.slice(0, 8) })),
      el("td", { text: i.host ?? "?" }), el("td", { text: i.pid ?? "?" }), el("td", { text: uptime(i.uptime) }),
      el("td", { title: i.procedures.join("\n"), text: i.procedures.length }))));
  document.getElementById("instance-count").textContent = instances.length;
  document.getElementById("no-instances").hidden = instances.length > 0;
}

function renderUnserved(unserved) {
  document.getElementById("unserved-section").hidden = unserved.length === 0;
  document.querySelector("#unserved tbody").replaceChildren(...unserved.map((p) =>
    el("tr", { "data-uri": p.uri },
      el("td", {}, el("code", { text: p.uri })),
      el("td", { text: p.nsqd.filter((n) => n.topic).map((n) => n.nsqd).join(", ") }),
      el("td", { text: p.depth }))));
}

function applyFilter() {
  const words = document.getElementById("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const entry of state.cards.values()) {
    const text = entry.node.querySelector("h3").textContent + " " + entry.node.querySelector(".description").textContent
      + " " + entry.node.querySelector(".tags").textContent;
    entry.node.hidden = !words.every((w) => text.toLowerCase().includes(w));
  }
}

async function refresh() {
  try {
    const report = await api("/api/catalog");
    renderInstances(report.instances);
    renderProcedures(report.procedures);
    renderUnserved(report.unserved);
    const errors = report.errors || [];
    setStatus(errors.length ? `warning: ${errors.join("; ")}` : `updated ${new Date(report.read_at * 1000).toLocaleTimeString()}`, errors.length > 0);
  } catch (error) {
    setStatus(`cannot read the bus: ${error.message}`, true);
  } finally {
    state.timer = setTimeout(refresh, state.settings.refresh * 1000);
  }
}

// ------------------------------------------------------------------ topics

function publishForm() {
  const form = document.getElementById("publish");
  const outcome = form.querySelector(".outcome");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const topic = form.elements.topic.value.trim();
    let message;
    try {
      message = JSON.parse(form.elements.message.value);
    } catch (error) {
      showOutcome(outcome, "bad", "the message is not valid JSON", error.message);
      return;
    }
    try {
      await api("/api/produce", { topic, message });
      showOutcome(outcome, "ok", `published to ${topic}`, "");
    } catch (error) {
      showOutcome(outcome, "bad", "not published", error.message);
    }
  });
}

function watchForm() {
  const form = document.getElementById("watch");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const topic = form.elements.topic.value.trim();
    if (topic) watchTopic(topic);
  });
}

function watchTopic(topic) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/api/watch?topic=${encodeURIComponent(topic)}&token=${encodeURIComponent(TOKEN)}`;
  const socket = new WebSocket(url);
  const list = el("ol", { class: "messages", reversed: true });
  const info = el("span", { class: "muted small", text: "connecting…" });
  const panel = el("div", { class: "watch", "data-topic": topic },
    el("div", { class: "watch-head" }, el("strong", { text: topic }), " ", info,
      el("button", { type: "button", class: "small", text: "stop", onclick: () => { socket.close(); panel.remove(); } })),
    list);
  document.getElementById("watches").prepend(panel);
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.event === "watching") info.textContent = `on ${data.channel}`;
    else if (data.event === "error") info.textContent = `error: ${data.error}`;
    else if (data.event === "message") {
      const m = data.message;
      const when = new Date(m.timestamp / 1e6).toLocaleTimeString();
      list.prepend(el("li", { class: "message" }, el("span", { class: "muted small", text: `${when} · ${m.id}` }),
        el("pre", { text: "body" in m ? JSON.stringify(m.body) : m.raw })));
      while (list.children.length > 200) list.lastChild.remove();
    }
  });
  socket.addEventListener("close", () => {
    if (info.textContent.startsWith("on ")) info.textContent += " (closed)";
    // refused before it opened: a bad topic name, too many live views, or almanet ui is gone
    else if (info.textContent === "connecting…") info.textContent = "refused: check the topic name (letters, digits, . _ -)";
  });
}

// ------------------------------------------------------------------ start

async function start() {
  try {
    state.settings = await api("/api/settings");
  } catch (error) {
    setStatus(`cannot reach almanet ui: ${error.message}`, true);
    return;
  }
  const where = [];
  if (state.settings.nsqd.length) where.push(`nsqd ${state.settings.nsqd.join(", ")}`);
  if (state.settings.lookupd.length) where.push(`nsqlookupd ${state.settings.lookupd.join(", ")}`);
  document.getElementById("where").textContent = where.join(" · ");
  document.getElementById("mode").hidden = !state.settings.read_only;
  if (state.settings.read_only) document.querySelectorAll(".writes").forEach((n) => n.remove());
  document.getElementById("filter").addEventListener("input", applyFilter);
  if (!state.settings.read_only) publishForm();
  watchForm();
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
