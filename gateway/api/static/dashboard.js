// The evgw dashboard: plain JavaScript, no build step, no external assets.
// The token lives in sessionStorage (gone when the tab closes) and goes out as a Bearer
// header; the live stream is read with fetch, since EventSource cannot send that header.
"use strict";

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

const TOKEN_KEY = "evgw-token";
const API = "/api/v1";
const RECONNECT_MS = 2000;
const MAX_POINTS = 20000; // a point per second for over five hours: bounds the chart's memory
const COLORS = ["#c0392b", "#2471a3", "#229954"];
const LINE_WIDTHS = [6, 3.5, 1.5];
const SOURCES = { meter: "metered", "meter-stale": "meter silent: paused", chargers: "sum of its chargers" };

const state = { token: sessionStorage.getItem(TOKEN_KEY), role: null, points: [], limit: null, stream: null };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function amps(value) { return value === null || value === undefined ? "–" : `${value.toFixed(1)} A`; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.token}` }, options.headers || {});
  const response = await fetch(API + path, Object.assign({}, options, { headers }));
  if (response.status === 401) { signOut("Your token was refused."); throw new Error("unauthorized"); }
  return response;
}

function showLogin(message) {
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  if (state.stream) state.stream.abort();
  setLive(false);
  showLogin(message);
}

async function signIn(token) {
  state.token = token;
  const response = await fetch(API + "/me", { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    state.token = null;
    showLogin(response.status === 401 ? "Unknown token." : `Sign-in failed (${response.status}).`);
    return;
  }
  const me = await response.json();
  state.role = me.role;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  await loadHistory();
  stream();
}

async function loadHistory() {
  try {
    const response = await api("/load-history?series=site");
    if (!response.ok) return;
    const history = await response.json();
    state.points = history.samples.map(([t, l1, l2, l3]) => [t, l1, l2, l3]);
    drawChart();
  } catch (error) { /* the stream fills the chart */ }
}

function setLive(on) {
  const badge = $("live");
  badge.textContent = on ? "live" : "offline";
  badge.className = on ? "badge" : "badge off";
}

async function stream() {
  if (!state.token) return;
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await api("/events", { signal: controller.signal });
    if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
    setLive(true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = message.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5)).join("\n");
        if (data) render(JSON.parse(data));
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  setLive(false);
  if (state.token) setTimeout(stream, RECONNECT_MS);
}

function render(snapshot) {
  const site = snapshot.site;
  $("site-summary").textContent =
    `${plural(site.chargers, "charger")} · ${(site.power_w / 1000).toFixed(1)} kW · ${plural(snapshot.sessions.length, "session")}`;
  state.limit = site.limit_a;
  const at = Date.parse(site.time) / 1000;
  const last = state.points[state.points.length - 1];
  // A point a second at most: a burst of events must not crowd the older history out.
  if (!last || at - last[0] >= 1) state.points.push([at, ...site.current_a]);
  if (state.points.length > MAX_POINTS) state.points.splice(0, state.points.length - MAX_POINTS);
  renderProblems(snapshot);
  renderCircuits(snapshot.circuits, site);
  renderChargers(snapshot.chargers);
  renderSessions(snapshot.sessions);
  renderUplinks(snapshot.uplinks);
  drawChart();
}

function renderProblems(snapshot) {
  const list = $("problems");
  list.replaceChildren();
  if (snapshot.problems.length === 0) list.append(el("li", { class: "ok" }, "No alarms, every charger and uplink fine."));
  for (const problem of snapshot.problems) list.append(el("li", {}, problem));
}

function phaseBar(label, measured, limit, allocated) {
  const share = limit > 0 && measured !== null ? measured / limit : 0;
  const fill = el("div", { class: "fill" + (share > 1 ? " over" : share > 0.85 ? " high" : "") });
  fill.style.width = `${Math.min(100, share * 100)}%`;
  const bar = el("div", { class: "bar" }, fill);
  if (allocated !== null && limit > 0) {
    const mark = el("div", { class: "alloc", title: `allocated ${amps(allocated)}` });
    mark.style.left = `${Math.min(100, (allocated / limit) * 100)}%`;
    bar.append(mark);
  }
  return el("div", { class: "phase" }, label, bar, `${measured === null ? "–" : measured.toFixed(1)} / ${limit.toFixed(0)} A`);
}

function renderCircuits(circuits, site) {
  const box = $("circuits");
  box.replaceChildren();
  if (circuits.length === 0) {
    const row = el("div", { class: "circuit" }, el("div", { class: "name" }, "Site (no fuse tree configured)"));
    site.current_a.forEach((value, phase) => row.append(el("div", { class: "phase" }, `L${phase + 1}`, "", amps(value))));
    box.append(row);
    return;
  }
  const depth = {};
  const byId = Object.fromEntries(circuits.map((c) => [c.id, c]));
  const depthOf = (c) => (c.parent === null ? 0 : (depth[c.id] ??= 1 + depthOf(byId[c.parent])));
  for (const circuit of circuits) {
    const row = el("div", { class: "circuit", "data-circuit": circuit.id });
    row.style.marginLeft = `${depthOf(circuit) * 1}rem`;
    row.append(el("div", { class: "name" }, circuit.id, el("span", { class: "muted" }, ` · ${SOURCES[circuit.measured_source] || circuit.measured_source}`)));
    for (let phase = 0; phase < 3; phase++) {
      const measured = circuit.measured_a === null ? null : circuit.measured_a[phase];
      row.append(phaseBar(`L${phase + 1}`, measured, circuit.limit_a[phase], circuit.allocated_a[phase]));
    }
    box.append(row);
  }
}

async function setAvailability(chargerId, operative) {
  await api(`/chargers/${encodeURIComponent(chargerId)}/availability`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ availability: operative ? "operative" : "inoperative" }),
  });
}

function renderChargers(chargers) {
  const box = $("chargers");
  box.replaceChildren();
  for (const charger of chargers) {
    const current = charger.current_a ? charger.current_a.map((a) => a.toFixed(1)).join(" / ") + " A" : "–";
    const card = el("article", { class: "card", "data-charger": charger.id },
      el("div", { class: "top" },
        el("span", { class: "id" }, charger.id),
        el("span", { class: `status ${charger.status || "Unknown"}` }, charger.online ? (charger.status || "…") : "Offline")),
      el("dl", {},
        el("dt", {}, "Current"), el("dd", { class: "current" }, current),
        el("dt", {}, "Power"), el("dd", {}, charger.power_w === null ? "–" : `${(charger.power_w / 1000).toFixed(2)} kW`),
        el("dt", {}, "Allocated"), el("dd", { class: "allocated" }, amps(charger.allocated_a)),
        el("dt", {}, "Setpoint"), el("dd", {}, amps(charger.setpoint_a)),
        el("dt", {}, "Energy"), el("dd", {}, charger.energy_wh === null ? "–" : `${(charger.energy_wh / 1000).toFixed(2)} kWh`),
        charger.error_code ? el("dt", {}, "Error") : null,
        charger.error_code ? el("dd", { class: "error" }, `${charger.ocpp_error_code} (${charger.error_code})`) : null),
      charger.balancing ? el("div", { class: "reason" }, charger.balancing.reason) : null);
    if (state.role === "admin") {
      card.append(el("button", {
        type: "button",
        class: "secondary",
        onclick: () => setAvailability(charger.id, !charger.operative),
      }, charger.operative ? "Take out of service" : "Put in service"));
    }
    box.append(card);
  }
}

function renderSessions(sessions) {
  const list = $("sessions");
  list.replaceChildren();
  if (sessions.length === 0) list.append(el("li", { class: "muted" }, "No session running."));
  for (const session of sessions) {
    const energy = session.energy_wh === null ? "–" : `${(session.energy_wh / 1000).toFixed(2)} kWh`;
    const since = new Date(session.started_at).toLocaleTimeString();
    list.append(el("li", {}, `${session.charger_id} · ${session.id_tag} · since ${since} · ${energy}`));
  }
}

function renderUplinks(uplinks) {
  const list = $("uplinks");
  list.replaceChildren();
  if (uplinks.length === 0) list.append(el("li", { class: "muted" }, "No uplink configured."));
  for (const uplink of uplinks) {
    const ok = uplink.connected && uplink.accepted;
    list.append(el("li", {},
      el("span", { class: ok ? "up" : "down" }, ok ? "● " : "○ "),
      `${uplink.id} · ${uplink.protocol} · ${ok ? "connected" : uplink.connected ? "not accepted" : "disconnected"}`,
      ` · queue ${uplink.queue_depth === null ? "–" : uplink.queue_depth}`));
  }
}

function drawChart() {
  const canvas = $("load-chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 220;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 40, right: 8, top: 8, bottom: 22 };
  const points = state.points;
  const limitMax = state.limit ? Math.max(...state.limit) : 0;
  let top = Math.max(limitMax, 1);
  for (const p of points) top = Math.max(top, p[1], p[2], p[3]);
  top *= 1.1;
  const now = Date.now() / 1000;
  const start = points.length ? Math.min(points[0][0], now - 600) : now - 600;
  const x = (t) => pad.left + ((t - start) / Math.max(1, now - start)) * (width - pad.left - pad.right);
  const y = (a) => height - pad.bottom - (a / top) * (height - pad.top - pad.bottom);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#5b6b7c";
  ctx.strokeStyle = "#e3e8ee";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const a = (top / 4) * i;
    ctx.beginPath(); ctx.moveTo(pad.left, y(a)); ctx.lineTo(width - pad.right, y(a)); ctx.stroke();
    ctx.fillText(`${a.toFixed(0)} A`, 2, y(a) + 4);
  }
  const span = now - start;
  for (let i = 0; i <= 3; i++) {
    const t = start + (span / 3) * i;
    const label = new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    ctx.textAlign = i === 3 ? "right" : i === 0 ? "left" : "center";
    ctx.fillText(label, x(t), height - 6);
  }
  ctx.textAlign = "left";
  if (state.limit) {
    ctx.strokeStyle = "#1d2733";
    ctx.setLineDash([6, 4]);
    ctx.beginPath(); ctx.moveTo(pad.left, y(limitMax)); ctx.lineTo(width - pad.right, y(limitMax)); ctx.stroke();
    ctx.setLineDash([]);
  }
  for (let phase = 0; phase < 3; phase++) {
    // Balanced three-phase load puts the lines on top of each other: narrower on top, so
    // every phase stays visible.
    ctx.lineWidth = LINE_WIDTHS[phase];
    ctx.strokeStyle = COLORS[phase];
    ctx.beginPath();
    points.forEach((p, index) => {
      if (index === 0) ctx.moveTo(x(p[0]), y(p[phase + 1]));
      else ctx.lineTo(x(p[0]), y(p[phase + 1]));
    });
    ctx.stroke();
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token").value.trim());
});
$("logout").addEventListener("click", () => signOut(""));
window.addEventListener("resize", drawChart);

if (state.token) signIn(state.token); else showLogin("");
