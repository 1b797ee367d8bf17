// The technician page: a live view over /tech/ws (which needs the session cookie and this
// page's own Origin) and its one state-changing button, reprint. Text only, never markup.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let nextId = 1;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function facts(target, pairs) {
    $(target).replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", k), el("dd", v ?? "—")]));
  }

  function age(seconds) {
    return seconds === undefined || seconds === null ? "—" : `${Number(seconds).toFixed(1)} s`;
  }

  function reprint(saleId) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ id: nextId++, cmd: "reprint", args: saleId ? { sale_id: saleId } : {} }));
  }

  function render(data) {
    const status = data.status || {};
    const link = status.link || {};
    const store = status.store || {};
    $("device").textContent = data.config.device;
    facts("link", [
      ["connected", link.connected ? "yes" : "NO"],
      ["broker", link.broker],
      ["last error", link.last_error || "—"],
      ["outbox depth", store.outbox_depth ?? link.queue_depth],
      ["oldest undelivered", age(store.outbox_oldest_age_s ?? link.oldest_undelivered_age_s)],
      ["sales allowed", store.sales_allowed === false ? `NO: ${store.alarm}` : "yes"],
      ["store used", store.used_bytes === undefined ? "—" : `${Math.round(store.used_bytes / 1024)} KiB`],
    ]);
    facts("config", [
      ["device", data.config.device],
      ["name", data.config.name],
      ["kind", data.config.kind],
      ["edged version", data.config.version],
      ["remote config", typeof data.config.remote === "string" ? data.config.remote : JSON.stringify(data.config.remote)],
    ]);
    const health = new Map((status.devices || []).map((d) => [d.kind, d]));
    $("devices").replaceChildren(...data.doctor.map((finding) => {
      const live = health.get(finding.kind);
      const good = finding.ok && (!live || live.ok);
      const box = el("div", undefined, `device ${good ? "good" : "bad"}`);
      box.dataset.kind = finding.kind;
      box.append(el("h3", `${finding.kind} · ${finding.driver} · ${finding.target || ""}`));
      box.append(el("p", good ? "ok" : (finding.present ? "PROBLEM" : "MISSING"), "verdict"));
      if (live && live.detail) box.append(el("p", live.detail, "muted"));
      for (const problem of finding.problems) box.append(el("p", `problem: ${problem}`, "problem"));
      for (const fix of finding.fixes) box.append(el("p", `fix: ${fix}`, "fix"));
      for (const note of finding.notes || []) box.append(el("p", `note: ${note}`, "muted"));
      return box;
    }));
    $("jobs").replaceChildren(...data.print_jobs.map((job) => {
      const row = el("tr");
      for (const v of [job.id, job.sale_id, job.kind, job.state, job.attempts, job.last_error, job.created_at]) {
        row.append(el("td", v ?? ""));
      }
      const cell = el("td");
      if (job.sale_id && job.kind === "receipt") {
        const button = el("button", "Reprint", "btn");
        button.type = "button";
        button.addEventListener("click", () => reprint(job.sale_id));
        cell.append(button);
      }
      row.append(cell);
      return row;
    }));
    $("sales").replaceChildren(...data.sales.map((sale) => {
      const row = el("tr");
      for (const v of [sale.no, sale.state, sale.total, sale.created_at, sale.completed_at]) row.append(el("td", v ?? ""));
      return row;
    }));
    $("logs").textContent = data.logs
      .map((e) => {
        const { ts, level, logger, event, ...rest } = e;
        const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : "";
        return `${ts} ${level.padEnd(7)} ${logger}: ${event}${extra}`;
      })
      .reverse()
      .join("\n");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/tech/ws`);
    socket.onopen = () => { $("live").textContent = "live"; $("live").className = "pill ok"; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "tech") render(message);
      else if (message.type === "reply") {
        $("reprint-result").textContent = message.ok ? "reprint queued" : message.error;
      }
    };
    socket.onclose = () => {
      $("live").textContent = "disconnected";
      $("live").className = "pill warn";
      setTimeout(connect, 2000);
    };
  }
  $("reprint-newest").addEventListener("click", () => reprint(null));
  connect();
})();
