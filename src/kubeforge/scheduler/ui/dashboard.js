// The kubeforge queue dashboard: polls the scheduler's JSON API with the team token kept in
// sessionStorage (never in a URL) and renders with textContent only (no HTML from data).
"use strict";
(() => {
  const KEY = "kubeforge-token";
  const POLL_MS = 2000;
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

  function renderQueues(queues, running) {
    const used = {};
    for (const job of running) {
      const u = (used[job.spec.queue] ||= { cpu: 0, memory: 0, gpu: 0 });
      const r = job.spec.resources, w = job.spec.workers;
      u.cpu += cpu(r.cpu) * w; u.memory += mib(r.memory) * w; u.gpu += r.gpu * w;
    }
    fill("queues", queues, "No queues yet.", (row, q) => {
      const u = used[q.name] || { cpu: 0, memory: 0, gpu: 0 };
      cell(row, q.name);
      cell(row, q.cohort || "none");
      usageCell(row, u.cpu, cpu(q.nominal.cpu), " cores");
      usageCell(row, u.memory / 1024, mib(q.nominal.memory) / 1024, " GiB");
      usageCell(row, u.gpu, q.nominal.gpu, "");
      const b = q.borrowing_limit;
      cell(row, q.cohort ? `${cpu(b.cpu)} cores, ${mib(b.memory) / 1024} GiB, ${b.gpu} GPU` : "no");
    });
  }

  let busy = false;

  async function refresh() {
    if (!token() || busy) return; // a slow answer never stacks polls on top of each other
    busy = true;
    try {
      const [queues, active, recent] = await Promise.all([
        json("/v1/queues"), json("/v1/jobs?active=1&limit=1000"), json("/v1/jobs?limit=200"),
      ]);
      const running = active.jobs.filter((job) => ACTIVE.has(job.state));
      const pendingIds = active.jobs.filter((job) => job.state === "pending").map((job) => job.id).slice(0, 100);
      const pending = await Promise.all(pendingIds.map((id) => json(`/v1/jobs/${id}`)));
      pending.sort((a, b) => (a.position ?? 1e9) - (b.position ?? 1e9) || a.id - b.id);
      const now = Date.now() / 1000;
      renderQueues(queues.queues, running);
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
    for (const table of ["queues", "pending", "running", "failed"]) $(table).tBodies[0].replaceChildren();
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
