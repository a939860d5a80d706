// Tide's page: vanilla JS, no build step. Every value from the server is shown with textContent (never HTML).
"use strict";
const $ = (id) => document.getElementById(id);
const COLORS = ["#2e6fbd", "#e07b39", "#3f9c5a", "#c0392b", "#8e5cc4", "#b8a12b", "#98a2b3"];
let key = sessionStorage.getItem("tide-key") || "";

async function api(method, path, body) {
  const resp = await fetch(path, {
    method, headers: { "Authorization": "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = data.error || { code: "http_" + resp.status, message: resp.statusText };
    throw new Error(err.code + ": " + err.message);
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function connect(ev) {
  ev.preventDefault();
  key = $("key").value.trim();
  sessionStorage.setItem("tide-key", key);
  try {
    const users = await api("GET", "/v1/users");
    const sel = $("user");
    sel.replaceChildren(el("option", "— pick a user —"));
    sel.firstChild.value = "";
    for (const u of users) {
      const o = el("option", u.user_id + " (" + u.behaviors + ")");
      o.value = u.user_id;
      sel.appendChild(o);
    }
    sel.disabled = false;
    setStatus(users.length + " user(s)");
  } catch (e) { setStatus(e.message, true); }
}

async function pick() {
  const user = $("user").value;
  $("transcript").replaceChildren();
  $("question").disabled = $("ask").disabled = !user;
  if (!user) return;
  setStatus("loading " + user + "…");
  const jobs = [loadSummary(user), loadTimeline(user), loadPrediction(user)];
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === "rejected");
  setStatus(failed.length ? failed[0].reason.message : "user " + user, failed.length > 0);
}

async function loadSummary(user) {
  $("summary").textContent = "…";
  const s = await api("GET", "/v1/users/" + encodeURIComponent(user) + "/summary");
  $("summary").textContent = s.text;
  $("summary").className = "";
  const f = s.facts;
  $("summary-meta").textContent = f.n_behaviors + " behaviors, " + (f.first_seen || "").slice(0, 10) + " – " +
    (f.last_seen || "").slice(0, 10) + " · written by " + s.generated_by;
}

async function loadTimeline(user) {
  const t = await api("GET", "/v1/users/" + encodeURIComponent(user) + "/timeline?bins=12");
  drawPlot(t);
}

// Stacked areas: one band per category, bins on x, shares (0..1) on y.
function drawPlot(t) {
  const W = 520, H = 220, L = 34, R = 8, T = 8, B = 28;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "interest shares over time");
  const bins = t.bins.filter((b) => b.n > 0);
  const legend = $("legend");
  legend.replaceChildren();
  if (!bins.length) { $("plot").replaceChildren(el("p", "No behaviors.", "muted")); return; }
  // x is time: each non-empty bin sits at its midpoint, so gaps in the history stay gaps
  const t0 = Date.parse(bins[0].start), t1 = Date.parse(bins[bins.length - 1].end);
  const mid = (b) => (Date.parse(b.start) + Date.parse(b.end)) / 2;
  const x = (i) => L + (bins.length === 1 || t1 <= t0 ? (W - L - R) / 2
                               : (mid(bins[i]) - t0) / (t1 - t0) * (W - L - R));
  const y = (v) => T + (1 - v) * (H - T - B);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  for (const v of [0, 0.5, 1]) {
    add("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e4e7ec" });
    add("text", { x: 2, y: y(v) + 3 }, Math.round(v * 100) + "%");
  }
  const base = bins.map(() => 0);
  t.categories.forEach((cat, ci) => {
    const top = bins.map((b, i) => base[i] + (b.shares[cat] || 0));
    const pts = top.map((v, i) => `${x(i)},${y(v)}`).concat(
      base.map((v, i) => `${x(i)},${y(v)}`).reverse());
    const color = COLORS[ci % COLORS.length];
    const poly = add("polygon", { points: pts.join(" "), fill: color, "fill-opacity": 0.8,
                                  stroke: "#fff", "stroke-width": 0.5, "data-category": cat });
    const title = document.createElementNS(ns, "title");
    title.textContent = cat;
    poly.appendChild(title);
    top.forEach((v, i) => { base[i] = v; });
    const item = el("span", cat);
    item.style.setProperty("--c", color);
    legend.appendChild(item);
  });
  const first = bins[0].start.slice(0, 10), last = bins[bins.length - 1].end.slice(0, 10);
  add("text", { x: L, y: H - 8 }, first);
  add("text", { x: W - R, y: H - 8, "text-anchor": "end" }, last);
  $("plot").replaceChildren(svg);
}

async function loadPrediction(user) {
  $("interests").replaceChildren(el("p", "…", "muted"));
  $("items").replaceChildren();
  const p = await api("POST", "/v1/users/" + encodeURIComponent(user) + "/predict", { k: 8 });
  const ids = [...new Set(p.interests.flatMap((i) => i.evidence))];
  const byId = {};
  if (ids.length) {
    const rows = await api("GET", "/v1/users/" + encodeURIComponent(user) + "/behaviors?ids=" + ids.join(","));
    for (const b of rows) byId[b.id] = b;
  }
  const box = $("interests");
  box.replaceChildren();
  for (const it of p.interests) {
    const div = el("div", undefined, "interest");
    div.appendChild(el("b", it.label));
    div.appendChild(el("span", it.horizon + " term", "tag"));
    div.appendChild(el("span", it.confidence, "tag"));
    const ul = el("ul", undefined, "evidence");
    for (const id of it.evidence) {
      const b = byId[id];
      ul.appendChild(el("li", b ? b.timestamp.slice(0, 10) + " · " + b.action + " · " + b.text : "behavior #" + id));
    }
    if (!it.evidence.length) ul.appendChild(el("li", "from the memory profile", "muted"));
    div.appendChild(ul);
    box.appendChild(div);
  }
  const list = $("items");
  for (const item of p.next_items) {
    const li = el("li", item.title);
    li.appendChild(el("span", "score " + item.score.toFixed(2) +
      (item.llm_prob === null ? "" : " · LLM p " + item.llm_prob.toFixed(2)), "score"));
    list.appendChild(li);
  }
  const prov = p.provenance;
  $("predict-meta").textContent = "as of " + p.as_of.slice(0, 16).replace("T", " ") + " · " +
    (prov.model || "no model") + (prov.fallback ? " · " + prov.fallback : "") +
    (p.drift.rising.length ? " · rising: " + p.drift.rising.join(", ") : "");
}

let history = [];
async function ask(ev) {
  ev.preventDefault();
  const user = $("user").value, q = $("question").value.trim();
  if (!user || !q) return;
  $("question").value = "";
  $("transcript").appendChild(el("div", "you: " + q, "you"));
  history.push({ role: "user", content: q });
  try {
    const r = await api("POST", "/v1/users/" + encodeURIComponent(user) + "/chat", { messages: history.slice(-6) });
    history.push({ role: "assistant", content: r.text });
    $("transcript").appendChild(el("div", "tide: " + r.text, "tide"));
  } catch (e) {
    history.pop();
    $("transcript").appendChild(el("div", e.message, "error"));
  }
}

$("connect").addEventListener("submit", connect);
$("user").addEventListener("change", () => { history = []; pick(); });
$("chat").addEventListener("submit", ask);
if (key) $("key").value = key;
