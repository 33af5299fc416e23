// The kubeforge queue dashboard: polls the scheduler's JSON API with the team token kept in
// sessionStorage (never in a URL) and renders with textContent only (no HTML from data).
"use strict";
(() => {
  const KEY = "kubeforge-token";
  const POLL_MS = 2000;
  const HISTORY_MS = 15000;
  const ACTIVE = new Set(["admitted", "running", "stopping"]);
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let follow = null; // {id, offset}
  let heldUntil = 0; // an action's message stays this long before "Updated" replaces it

  const token = () => sessionStorage.getItem(KEY) || "";

  async function api(path, options = {}) {
    const headers = { Authorization: "Bearer " + token() };
    const answer = await fetch(path, { ...options, headers, cache: "no-store", credentials: "omit" });
    if (answer.status === 401) { signOut("The token was refused (unknown, revoked or expired)."); throw new Error("401"); }
    return answer;
  }

  async function json(path) {
    const answer = await api(path);
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error || answer.statusText);
    return body;
  }

  function say(message, bad = false, holdMs = 0) {
    heldUntil = Date.now() + holdMs;
    $("status").textContent = message;
    $("status").className = bad ? "error" : "";
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function fill(tableId, rows, emptyText, render) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const row = body.insertRow();
      const td = cell(row, emptyText);
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      td.className = "empty";
      return;
    }
    for (const item of rows) render(body.insertRow(), item);
  }

  const cpu = (text) => (String(text).endsWith("m") ? parseInt(text, 10) / 1000 : parseFloat(text));
  const mib = (text) => parseInt(text, 10);
  function timeCell(row, seconds, missing) {
    const td = cell(row, seconds ? "" : missing);
    if (seconds) {
      const time = document.createElement("time");
      time.dateTime = new Date(seconds * 1000).toISOString();
      time.textContent = new Date(seconds * 1000).toLocaleString();
      td.appendChild(time);
    }
  }
  const jobName = (job) => "#" + job.id + (job.spec.name ? " " + job.spec.name : "");

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + (s % 60) + "s";
  }

  function usageCell(row, used, quota, unit) {
    const td = cell(row, "");
    const share = quota > 0 ? used / quota : 0;
    const meter = document.createElement("span");
    meter.className = "meter" + (share > 1 ? " over" : "");
    meter.setAttribute("aria-hidden", "true");
    const bar = document.createElement("span");
    bar.style.width = Math.min(100, share * 100) + "%";
    meter.appendChild(bar);
    td.append(meter, `${+used.toFixed(2)} / ${+quota.toFixed(2)}${unit} (${Math.round(share * 100)}%)`);
  }

  function button(row, label, text, onClick) {
    const td = cell(row, "");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.className = "secondary";
    b.addEventListener("click", onClick);
    td.appendChild(b);
    return td;
  }

  async function cancel(job) {
    const answer = await api(`/v1/jobs/${job.id}`, { method: "DELETE" });
    const body = await answer.json();
    say(answer.ok ? `Cancel requested for job ${job.id}.` : `Job ${job.id} not cancelled: ${body.error}`, !answer.ok, 8000);
    refresh();
  }

  function actions(row, job, withLog) {
    const td = button(row, `Cancel job ${job.id}`, "Cancel", () => cancel(job));
    if (withLog) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Follow log";
      b.setAttribute("aria-label", `Follow the log of job ${job.id}`);
      b.addEventListener("click", () => startFollowing(job.id));
      td.append(" ", b);
    }
  }

  const amount = (r) => ({ cpu: cpu(r.cpu), memory: mib(r.memory) / 1024, gpu: r.gpu });
  const amountText = (r) => { const a = amount(r); return `${+a.cpu.toFixed(2)} cores, ${+a.memory.toFixed(2)} GiB, ${a.gpu} GPU`; };

  function renderQueues(usage) {
    fill("queues", usage.queues, "No queues yet.", (row, q) => {
      const used = amount(q.used), quota = amount(q.nominal);
      cell(row, q.name);
      cell(row, q.cohort || "none");
      usageCell(row, used.cpu, quota.cpu, " cores");
      usageCell(row, used.memory, quota.memory, " GiB");
      usageCell(row, used.gpu, quota.gpu, "");
      const borrowed = amount(q.borrowed);
      cell(row, borrowed.cpu || borrowed.memory || borrowed.gpu ? amountText(q.borrowed) : "no");
      cell(row, q.cohort ? amountText(q.borrowing_limit) : "no");
      const teams = Object.entries(q.teams).map(([team, r]) => `${team}: ${amountText(r)}`);
      cell(row, teams.length ? teams.join("; ") : "none");
    });
  }

  // The history chart: one line per queue (each its own colour and dash pattern), a dashed quota line at
  // 100%, drawn with DOM calls only; the caption and the table beside it carry the same facts as text.
  const SVG = "http://www.w3.org/2000/svg";
  const LINES = [["#0b4f8a", ""], ["#8a1010", "6 3"], ["#1a6b2a", "2 3"], ["#6b3fa0", "8 3 2 3"], ["#7a5200", "12 4"]];
  const percent = (value) => Math.round(value * 100) + "%";
  let historyAt = 0;
  let lastHistory = null;

  function draw(parent, tag, attributes, text) {
    const element = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
    if (text !== undefined) element.textContent = text;
    parent.appendChild(element);
    return element;
  }

  function renderHistory(history, usage) {
    const current = Object.fromEntries(usage.queues.map((q) => [q.name, q.share]));
    const chart = $("history-chart"), legend = $("history-legend");
    chart.replaceChildren(); legend.replaceChildren();
    const [W, H, L, R, T, B] = [720, 230, 48, 12, 12, 34];
    const n = history.times.length;
    const top = Math.max(1, ...history.queues.flatMap((q) => q.share)) * 1.1;
    const x = (i) => L + (n > 1 ? (i * (W - L - R)) / (n - 1) : 0);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    draw(chart, "rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#c8c8c8" });
    for (const v of [0, 0.5, 1]) {
      draw(chart, "line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: v === 1 ? "#4a4a4a" : "#c8c8c8", "stroke-dasharray": v === 1 ? "4 4" : "" });
      draw(chart, "text", { x: 4, y: y(v) + 4 }, percent(v));
    }
    draw(chart, "text", { x: W - R - 92, y: y(1) - 5 }, "quota (100%)");
    const minutes = Math.round((history.end - history.start) / 60);
    draw(chart, "text", { x: L, y: H - 10 }, `${minutes} min ago`);
    draw(chart, "text", { x: W - R - 28, y: H - 10 }, "now");
    const lines = [];
    history.queues.forEach((q, index) => {
      const [colour, dash] = LINES[index % LINES.length];
      const points = q.share.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      draw(chart, "polyline", { points, fill: "none", stroke: colour, "stroke-width": 2.5, "stroke-dasharray": dash });
      const item = document.createElement("li");
      const swatch = draw(item, "svg", { width: 28, height: 10, "aria-hidden": "true" });
      draw(swatch, "line", { x1: 0, x2: 28, y1: 5, y2: 5, stroke: colour, "stroke-width": 3, "stroke-dasharray": dash });
      item.append(q.name);
      legend.appendChild(item);
      const average = q.share.reduce((a, b) => a + b, 0) / Math.max(1, n);
      lines.push({ q, now: current[q.name] || 0, average, peak: Math.max(current[q.name] || 0, ...q.share) });
    });
    $("history-summary").textContent = lines.length
      ? `Share of quota over the last ${minutes} minutes: ` +
        lines.map((l) => `${l.q.name} now ${percent(l.now)}, average ${percent(l.average)}, peak ${percent(l.peak)}`).join("; ") + "."
      : "No queues yet.";
    fill("history", lines, "No queues yet.", (row, l) => {
      row.id = "history-" + l.q.name;
      cell(row, l.q.name); cell(row, percent(l.now)); cell(row, percent(l.average)); cell(row, percent(l.peak));
      const teams = Object.entries(l.q.teams).map(([team, s]) => `${team}: ${percent(s.reduce((a, b) => a + b, 0) / Math.max(1, n))}`);
      cell(row, teams.length ? teams.join("; ") : "none");
    });
    const fair = Object.entries(history.fair_share).map(([team, f]) => `${team} ${f.history.toFixed(3)}`);
    $("fair-share").textContent = fair.length
      ? "Fair-share standing (decayed dominant share; lower goes first): " + fair.join(", ") + "."
      : "No fair-share standing recorded yet.";
  }

  let busy = false;

  async function refresh() {
    if (!token() || busy) return; // a slow answer never stacks polls on top of each other
    busy = true;
    try {
      const [usage, active, recent] = await Promise.all([
        json("/v1/usage"), json("/v1/jobs?active=1&limit=1000"), json("/v1/jobs?limit=200"),
      ]);
      if (Date.now() - historyAt >= HISTORY_MS) { // the history is computed from records: fetched less often
        lastHistory = await json("/v1/usage/history?window_s=3600&buckets=60");
        historyAt = Date.now();
      }
      renderHistory(lastHistory, usage);
      const running = active.jobs.filter((job) => ACTIVE.has(job.state));
      const pendingIds = active.jobs.filter((job) => job.state === "pending").map((job) => job.id).slice(0, 100);
      const pending = await Promise.all(pendingIds.map((id) => json(`/v1/jobs/${id}`)));
      pending.sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9) || a.id - b.id);
      const now = Date.now() / 1000;
      renderQueues(usage);
      fill("pending", pending, "Nothing is waiting.", (row, job) => {
        row.id = "job-" + job.id;
        cell(row, jobName(job)); cell(row, job.spec.team); cell(row, job.spec.queue);
        cell(row, job.position ?? "unknown");
        const behind = job.position > 1 ? `behind ${job.position - 1} earlier job(s) in the queue` : "not decided yet";
        cell(row, job.reason || behind);
        timeCell(row, job.estimated_start, "not known (it cannot fit now)");
        actions(row, job, false);
      });
      fill("running", running, "Nothing is running.", (row, job) => {
        row.id = "job-" + job.id;
        cell(row, jobName(job)); cell(row, job.spec.team); cell(row, job.spec.queue); cell(row, job.state);
        cell(row, job.admitted_at ? duration(now - job.admitted_at) : "starting");
        actions(row, job, true);
      });
      const failed = recent.jobs.filter((job) => job.state === "failed").slice(0, 20);
      fill("failed", failed, "No recent failures.", (row, job) => {
        row.id = "job-" + job.id;
        cell(row, jobName(job)); cell(row, job.spec.team); cell(row, job.spec.queue);
        cell(row, job.exit_code); cell(row, job.reason); timeCell(row, job.finished_at, "");
      });
      if (Date.now() >= heldUntil) say("Updated " + new Date().toLocaleTimeString() + ".");
      await followLog();
    } catch (error) {
      if (error.message !== "401") say("Could not refresh: " + error.message, true);
    } finally {
      busy = false;
    }
  }

  function startFollowing(id) {
    follow = { id, offset: null, reading: false, decoder: new TextDecoder() };
    $("log").textContent = "";
    $("log-title").textContent = `Log of job ${id} (following)`;
    $("log-section").hidden = false;
    followLog().catch((error) => say("Could not read the log: " + error.message, true));
  }

  async function followLog() {
    const current = follow;
    if (!current || current.reading) return; // one read at a time, so no range is appended twice
    current.reading = true;
    try {
      const query = current.offset === null ? "" : `?offset=${current.offset}`;
      const answer = await api(`/v1/jobs/${current.id}/logs${query}`);
      if (!answer.ok || follow !== current) return;
      const bytes = await answer.arrayBuffer(); // offsets count bytes; a character split across reads is kept whole
      const start = parseInt(answer.headers.get("x-log-offset") || "0", 10);
      const log = $("log");
      const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.textContent += current.decoder.decode(bytes, { stream: true });
      current.offset = start + bytes.byteLength;
      if (atBottom) log.scrollTop = log.scrollHeight;
    } finally {
      current.reading = false;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    follow = null;
    $("log").textContent = ""; // the next token's holder must not see this one's log
    $("log-section").hidden = true;
    for (const table of ["queues", "history", "pending", "running", "failed"]) $(table).tBodies[0].replaceChildren();
    $("history-chart").replaceChildren(); $("history-legend").replaceChildren(); $("fair-share").textContent = "";
    $("history-summary").textContent = "No history yet."; historyAt = 0; lastHistory = null;
    clearInterval(timer);
    $("main").hidden = true; $("session").hidden = true; $("login").hidden = false;
    say(message, Boolean(message), message ? 60000 : 0);
    $("token").focus();
  }

  function signIn() {
    $("login").hidden = true; $("session").hidden = false; $("main").hidden = false;
    $("who").textContent = "Token kept for this tab.";
    say("Loading…");
    clearInterval(timer);
    timer = setInterval(refresh, POLL_MS);
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, $("token").value.trim());
      $("token").value = "";
      signIn();
    });
    $("logout").addEventListener("click", () => signOut(""));
    $("log-stop").addEventListener("click", () => {
      follow = null;
      $("log-title").textContent = "Log (stopped)";
    });
    if (token()) signIn();
  });
})();
