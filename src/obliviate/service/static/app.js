// The obliviate dashboard: plain DOM, no framework, no build step. Every text that came from the server is put
// in the page with textContent (never as HTML), so a note or an owner name cannot inject markup.
"use strict";

const state = { token: null, who: null, offset: 0, limit: 25, total: 0, selected: null };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function has(scope) { return !!state.who && state.who.scopes.includes(scope); }

function say(text, kind) {
  const m = $("message");
  m.textContent = text || "";
  m.className = kind || "";
}

async function api(method, path, body, raw) {
  const headers = { Authorization: "Bearer " + state.token };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = raw ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.statusText;
    const error = new Error(response.status + ": " + detail);
    error.status = response.status;
    throw error;
  }
  return { status: response.status, data };
}

function when(iso) { return iso ? iso.replace("T", " ").slice(0, 16) : ""; }

// ---------------------------------------------------------------- sign in
async function signIn(token) {
  state.token = token;
  try {
    state.who = (await api("GET", "/whoami")).data;
  } catch (e) {
    state.token = null;
    sessionStorage.removeItem("obliviate-token");
    $("login-error").textContent = e.status === 401 ? "That token is unknown, expired or revoked." : e.message;
    return;
  }
  sessionStorage.setItem("obliviate-token", token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").replaceChildren(
    el("span", { "data-testid": "scopes" }, state.who.scopes.join(", ")),
    " token " + state.who.token_id + (state.who.name ? " (" + state.who.name + ")" : "") + " ",
    el("button", { type: "button", onclick: signOut }, "Sign out"));
  for (const node of document.querySelectorAll("[data-scope]")) {
    node.hidden = !node.dataset.scope.split(" ").some(has);
  }
  show("queue");
}

function signOut() {
  sessionStorage.removeItem("obliviate-token");
  location.reload();
}

function show(tab) {
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== "tab-" + tab;
  say("");
  ({ queue: loadQueue, batches: loadBatches, charts: loadCharts, report: loadReport })[tab]?.();
}

// ---------------------------------------------------------------- queue
async function loadQueue() {
  const params = new URLSearchParams({ offset: state.offset, limit: state.limit });
  if ($("f-state").value) params.set("state", $("f-state").value);
  if ($("f-overdue").checked) params.set("overdue", "true");
  let page;
  try {
    page = (await api("GET", "/requests?" + params)).data;
  } catch (e) { say(e.message, "error"); return; }
  state.total = page.total;
  const rows = page.items.map(r => el("tr", {
      class: (r.overdue ? "overdue " : "") + "status-" + r.status,
      "data-request": r.request_id, "data-testid": "queue-row", onclick: () => openRequest(r.request_id),
    },
    el("td", { class: "mono" }, r.request_id),
    el("td", {}, [r.owners.join(", "), r.ids.length ? r.ids.length + " ids" : ""].filter(Boolean).join(", ")),
    el("td", {}, el("span", { class: "badge " + r.status }, r.status)),
    el("td", {}, when(r.received)),
    el("td", {}, when(r.deadline), r.overdue ? el("strong", { class: "late" }, " OVERDUE") : null),
    el("td", {}, r.reason || r.note || r.batch_id || "")));
  $("queue").tBodies[0].replaceChildren(...rows);
  if (!rows.length) $("queue").tBodies[0].append(el("tr", {}, el("td", { colspan: 6, class: "hint" }, "no request")));
  $("page").textContent = page.total ? ` ${page.offset + 1}-${page.offset + page.items.length} of ${page.total} ` : "";
  $("prev").disabled = state.offset === 0;
  $("next").disabled = page.next_offset === null;
  if (has("operator") || has("auditor")) loadCounts();
}

async function loadCounts() {
  try {
    const s = (await api("GET", "/status")).data;
    $("counts").replaceChildren(...[...Object.entries(s.counts).map(([k, v]) => el("span", { class: "badge " + k }, `${k} ${v}`)),
      s.overdue ? el("span", { class: "badge late-badge", "data-testid": "overdue-count" }, `${s.overdue} overdue`) : null,
      s.next_deadline ? el("span", { class: "hint" }, ` next deadline ${when(s.next_deadline.deadline)}`) : null,
    ].filter(Boolean));
  } catch (e) { /* the queue still shows */ }
}

async function openRequest(id) {
  state.selected = id;
  let r;
  try { r = (await api("GET", "/requests/" + id)).data; } catch (e) { say(e.message, "error"); return; }
  $("detail").hidden = false;
  $("certificate").hidden = true;
  $("d-title").textContent = r.request_id;
  const fields = [["status", r.status], ["owners", r.owners.join(", ") || "-"], ["ids", r.ids.join(", ") || "-"],
    ["received", when(r.received)], ["deadline", when(r.deadline) + (r.overdue ? " (OVERDUE)" : "")],
    ["batch", r.batch_id || "-"], ["note", r.note || "-"], ["client key", r.client_key || "-"]];
  if (r.reason) fields.push(["reason", r.reason]);
  if ("filed_by" in r) fields.push(["filed by token", r.filed_by || "(command line)"]);
  $("d-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("d-history").replaceChildren(...r.history.map(h => el("li", { class: "step " + h.to },
    el("span", { class: "badge " + h.to }, h.to), " " + when(h.at), h.batch_id ? " batch " + h.batch_id : "",
    h.detail ? el("span", { class: "hint" }, " " + h.detail) : null)));
  const actions = [];
  if (r.certificate) actions.push(el("button", { type: "button", "data-testid": "open-certificate",
    onclick: () => openCertificate(r.request_id) }, "Open certificate"));
  $("d-cert-actions").replaceChildren(...actions);
  $("detail").scrollIntoView({ block: "nearest" });
}

async function openCertificate(id) {
  let cert;
  try { cert = (await api("GET", "/certificates/" + id)).data; } catch (e) { say(e.message, "error"); return; }
  const text = JSON.stringify(cert, null, 2);
  $("c-json").textContent = text;
  const fields = [["method", cert.method + " (" + cert.guarantee + ")"], ["batch", cert.batch_id],
    ["ids removed", String((cert.removed_ids || []).length)], ["applied", when(cert.applied_at)],
    ["deadline", when(cert.deadline) + (cert.overdue ? " (applied late)" : " (met)")],
    ["model sha256", (cert.model || {}).sha256 || "-"],
    ["signed by", (cert.signer || {}).fingerprint || "-"]];
  const evidence = cert.evidence || {};
  if ("forget_accuracy" in evidence) fields.push(["forget accuracy", (100 * evidence.forget_accuracy).toFixed(1) + " %"]);
  $("c-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]));
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const actions = [el("a", { href: url, download: id + ".json", "data-testid": "download-certificate" }, "Download")];
  if (has("auditor") || has("operator")) {
    actions.push(el("button", { type: "button", "data-testid": "verify-certificate",
      onclick: async () => renderChecks($("c-checks"), await verifyBody(text)) }, "Verify now"));
  }
  $("c-checks").replaceChildren(el("div", { class: "row" }, actions));
  $("certificate").hidden = false;
}

async function verifyBody(text) {
  try { return (await api("POST", "/verify", text, true)).data; } catch (e) { say(e.message, "error"); return null; }
}

function renderChecks(where, result) {
  if (!result) return;
  where.append(el("div", { class: result.ok ? "verdict ok" : "verdict bad", "data-testid": "verdict" },
    result.ok ? "VERIFIED" : "FAILED", result.marked_verified ? " (request marked verified)" : ""),
  el("ul", {}, result.checks.map(c => el("li", { class: c.ok ? "pass" : "fail" }, (c.ok ? "PASS " : "FAIL ") + c.name + ": " + c.detail))));
}

async function applyDue() {
  $("apply").disabled = true;
  say("applying: retraining what the due requests touch...");
  try {
    const r = (await api("POST", "/apply")).data;
    if (r.nothing_due) say("Nothing due: every request is applied, verified or failed.", "ok");
    else say(`Applied ${r.applied} request(s) in ${r.batches.length} batch(es)` +
      (r.failed.length ? `; ${r.failed.length} failed: ` + r.failed.map(f => f.request_id + " (" + f.reason + ")").join("; ") : "."),
      r.failed.length ? "error" : "ok");
  } catch (e) { say(e.message, "error"); }
  $("apply").disabled = false;
  await loadQueue();
  if (state.selected) openRequest(state.selected);
}

// ---------------------------------------------------------------- filing
async function fileRequest(event) {
  event.preventDefault();
  const owners = $("r-owners").value.split(",").map(s => s.trim()).filter(Boolean);
  const idsText = $("r-ids").value.split(",").map(s => s.trim()).filter(Boolean);
  const ids = idsText.map(Number);
  if (ids.some(i => !Number.isSafeInteger(i))) { say("ids must be whole numbers, separated by commas.", "error"); return; }
  const body = { deadline_days: Number($("r-days").value || 30), note: $("r-note").value };
  if (owners.length) body.owners = owners;
  if (ids.length) body.ids = ids;
  if ($("r-key").value.trim()) body.client_key = $("r-key").value.trim();
  try {
    const r = await api("POST", "/requests", body);
    say((r.status === 201 ? "Filed " : "Already filed (same client key): ") + r.data.request_id, "ok");
    $("file-form").reset();
    state.offset = 0;
    show("queue");
    say((r.status === 201 ? "Filed " : "Already filed (same client key): ") + r.data.request_id, "ok");
    openRequest(r.data.request_id);
  } catch (e) { say(e.message, "error"); }
}

// ---------------------------------------------------------------- batches, charts, report, verify
async function loadBatches() {
  let list;
  try { list = (await api("GET", "/batches")).data; } catch (e) { say(e.message, "error"); return; }
  $("batches").tBodies[0].replaceChildren(...list.map(b => el("tr", { "data-testid": "batch-row" },
    el("td", { class: "mono" }, b.batch_id), el("td", {}, when(b.scheduled_at)), el("td", {}, when(b.finished_at)),
    el("td", {}, String(b.requests.length)), el("td", {}, String(b.applied)), el("td", {}, String(b.failed)),
    el("td", {}, b.method ? b.method + " (" + b.guarantee + ")" : "-"),
    el("td", {}, (b.shards_rebuilt || []).join(", ") || "-"),
    el("td", {}, b.seconds !== undefined && b.seconds !== null ? b.seconds.toFixed(2) : "-"))));
  if (!list.length) $("batches").tBodies[0].append(el("tr", {}, el("td", { colspan: 9, class: "hint" }, "no batch yet")));
}

function barChart(days) {
  const entries = Object.entries(days);
  if (!entries.length) return el("p", { class: "hint" }, "no request yet");
  const w = 640, h = 200, pad = 30, max = Math.max(...entries.map(([, n]) => n));
  const bw = Math.max(4, Math.min(40, (w - 2 * pad) / entries.length - 4));
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h + 40}`, class: "chart", role: "img", "aria-label": "requests per day" });
  chart.append(svg("line", { x1: pad, y1: h, x2: w - pad, y2: h, class: "axis" }));
  entries.forEach(([day, n], i) => {
    const x = pad + i * (bw + 4), bh = (h - pad) * n / max;
    chart.append(svg("rect", { x, y: h - bh, width: bw, height: bh, class: "bar" }, svg("title", {}, `${day}: ${n}`)),
      svg("text", { x: x + bw / 2, y: h - bh - 4, class: "label", "text-anchor": "middle" }, String(n)));
    if (entries.length <= 14 || i % Math.ceil(entries.length / 14) === 0) {
      chart.append(svg("text", { x: x + bw / 2, y: h + 16, class: "label", "text-anchor": "middle" }, day.slice(5)));
    }
  });
  return chart;
}

function applyChart(times) {
  if (!times.length) return el("p", { class: "hint" }, "no applied request yet");
  const shown = times.slice(-40), rowH = 16, w = 640, left = 150, h = shown.length * rowH + 30;
  const max = Math.max(1, ...shown.map(t => Math.max(t.days_taken, t.days_allowed)));
  const scale = d => left + (w - left - 20) * d / max;
  const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "chart", role: "img", "aria-label": "time to apply" });
  shown.forEach((t, i) => {
    const y = 10 + i * rowH;
    chart.append(svg("text", { x: left - 6, y: y + 11, class: "label", "text-anchor": "end" }, t.request_id),
      svg("rect", { x: left, y: y + 2, width: Math.max(1, scale(t.days_taken) - left), height: rowH - 5,
        class: t.late ? "bar late" : "bar" }, svg("title", {}, `${t.days_taken.toFixed(2)} of ${t.days_allowed.toFixed(1)} days`)),
      svg("line", { x1: scale(t.days_allowed), x2: scale(t.days_allowed), y1: y, y2: y + rowH - 1, class: "deadline" }));
  });
  chart.append(svg("text", { x: w - 20, y: h - 4, class: "label", "text-anchor": "end" }, `${max.toFixed(1)} days`));
  return chart;
}

async function loadCharts() {
  let s;
  try { s = (await api("GET", "/stats")).data; } catch (e) { say(e.message, "error"); return; }
  $("chart-per-day").replaceChildren(barChart(s.per_day));
  $("chart-apply").replaceChildren(applyChart(s.apply_times));
}

async function loadReport() {
  let r;
  try { r = (await api("GET", "/report")).data; } catch (e) { say(e.message, "error"); return; }
  if (!r.text) { $("report").replaceChildren(el("p", { class: "hint" }, "No benchmark report: start the server with --report PATH.")); return; }
  $("rep-title").textContent = "Benchmark report: " + r.name + " (" + when(r.modified) + ")";
  if (r.kind === "html") {
    const frame = el("iframe", { sandbox: "", class: "report", title: "benchmark report" });
    frame.srcdoc = r.text;  // sandboxed: no scripts, no same-origin access
    $("report").replaceChildren(frame);
  } else {
    $("report").replaceChildren(el("pre", { class: "report" }, r.text));
  }
}

async function verifyFile() {
  const file = $("v-file").files[0];
  if (!file) return;
  const text = await file.text();
  $("v-result").replaceChildren();
  renderChecks($("v-result"), await verifyBody(text));
}

// ---------------------------------------------------------------- wiring
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", e => { e.preventDefault(); signIn($("token").value.trim()); });
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.tab));
  $("filters").addEventListener("submit", e => { e.preventDefault(); state.offset = 0; loadQueue(); });
  $("f-state").addEventListener("change", () => { state.offset = 0; loadQueue(); });
  $("f-overdue").addEventListener("change", () => { state.offset = 0; loadQueue(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadQueue(); });
  $("next").addEventListener("click", () => { state.offset += state.limit; loadQueue(); });
  $("apply").addEventListener("click", applyDue);
  $("file-form").addEventListener("submit", fileRequest);
  $("v-file").addEventListener("change", verifyFile);
  const saved = sessionStorage.getItem("obliviate-token");
  if (saved) signIn(saved);
});
