// The shopper's screen. It shows what the daemon's feed says and sends button presses as
// the same control commands `edged cart ...` sends. It computes no amount: every price and
// total is text from the daemon. Every text goes into a text node, never into markup.
"use strict";
(() => {
  const T = {
    zh: {
      call_staff: "呼叫店员", switch_language: "English", scan_an_item: "请扫描商品条码",
      scan_hint: "将商品条码对准扫描窗口", total: "合计", pay_qr: "小程序支付",
      show_payment_code: "或向摄像头出示付款码", cancel: "取消", confirm_on_phone: "请在手机上确认",
      amount_due: "应付", scan_to_pay: "请用小程序扫码支付", valid_for: "剩余时间",
      thank_you: "支付成功，谢谢惠顾", amount_paid: "已付", out_of_service: "暂停服务",
      out_of_service_hint: "请联系店员", reconnecting: "正在连接…",
      reconnecting_hint: "请稍候，或联系店员", staff_coming: "请稍候，店员马上就来", ok: "好的",
      basket: "购物车", remove: "删除", less: "减少", more: "增加", expired: "已过期",
      offline: "未连接，请稍候", checkout: "结账",
    },
    en: {
      call_staff: "Call staff", switch_language: "中文", scan_an_item: "Please scan an item",
      scan_hint: "Hold the barcode to the scanner window", total: "Total",
      pay_qr: "Pay in the mini-program", show_payment_code: "or show your payment code to the camera",
      cancel: "Cancel", confirm_on_phone: "Please confirm on your phone", amount_due: "Amount due",
      scan_to_pay: "Scan with the mini-program to pay", valid_for: "Time left",
      thank_you: "Paid. Thank you!", amount_paid: "Paid", out_of_service: "Out of service",
      out_of_service_hint: "Please ask a member of staff", reconnecting: "Connecting…",
      reconnecting_hint: "Please wait, or ask a member of staff",
      staff_coming: "A member of staff is on the way", ok: "OK", basket: "Your basket",
      remove: "Remove", less: "One less", more: "One more", expired: "expired",
      offline: "Not connected, please wait", checkout: "Checkout",
    },
  };
  const SECTIONS = ["welcome", "basket", "paying", "qr", "paid", "message"];
  const THANK_YOU_MS = 6000;
  // The daemon goes back to its welcome as soon as the receipt is out; the shopper still
  // reads the thank-you for a few seconds, unless the next shopper starts scanning.
  const $ = (id) => document.getElementById(id);

  let lang = "zh";
  let langChosen = false;
  let boot = null;
  let seq = -1;
  let state = null;
  let socket = null;
  let retryMs = 250;
  let nextId = 1;
  let toastTimer = null;
  let paidView = null;
  let paidUntil = 0;
  const rendered = [];
  // For tests and `edged bench screen`: which change is on the screen, and since when.
  window.edgedScreen = { rendered, seq: () => seq, boot: () => boot };

  const t = (key) => T[lang][key];
  const pick = (text) => (text ? text[lang] : "");

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws`);
    socket.onmessage = (event) => receive(JSON.parse(event.data));
    socket.onopen = () => { retryMs = 250; };
    socket.onclose = () => {
      socket = null;
      $("offline").hidden = false;
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 4000);
    };
  }

  function receive(message) {
    if (message.type === "hello") {
      if (!langChosen) lang = message.language === "en" ? "en" : "zh";
    } else if (message.type === "snapshot") {
      boot = message.boot;
      seq = message.seq;
      state = message.state;
      $("offline").hidden = true;
      render();
    } else if (message.type === "change") {
      if (message.boot !== boot || message.seq !== seq + 1) {
        socket.close(); // a change went missing: start again from a snapshot
        return;
      }
      seq = message.seq;
      Object.assign(state, message.set);
      render();
    } else if (message.type === "reply" && !message.ok) {
      toast(message.error);
    }
  }

  function send(cmd, args) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      toast(t("offline"));
      return;
    }
    socket.send(JSON.stringify({ id: nextId++, cmd, args: args || {} }));
  }

  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function button(className, text, label, onPress) {
    const node = el("button", `btn ${className}`, text);
    node.type = "button";
    node.setAttribute("aria-label", label);
    node.addEventListener("click", onPress);
    return node;
  }

  function renderItems(items) {
    const list = $("items");
    list.replaceChildren(...items.map((item) => {
      const row = el("li", "item");
      row.dataset.line = String(item.line);
      const name = el("div", "name", item.name);
      name.append(el("span", "unit", item.unit_price));
      const qty = el("div", "qty-box");
      const less = button("round less", "−", t("less"), () =>
        send("cart.qty", { line: item.line, quantity: item.quantity - 1 }));
      less.disabled = item.quantity <= 1;
      const more = button("round more", "+", t("more"), () =>
        send("cart.qty", { line: item.line, quantity: item.quantity + 1 }));
      qty.append(less, el("span", "qty", String(item.quantity)), more);
      const remove = button("round remove", "×", t("remove"), () =>
        send("cart.void", { line: item.line }));
      row.append(name, qty, el("span", "amount", item.amount), remove);
      return row;
    }));
  }

  function tick() {
    const view = state && state.view;
    if (!view || view.kind !== "qr" || view.expires_at_ms === null) return;
    const left = Math.max(0, Math.round((view.expires_at_ms - Date.now()) / 1000));
    $("countdown").textContent = left > 0
      ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`
      : t("expired");
  }

  function render() {
    document.documentElement.lang = lang;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    $("out-of-service").hidden = !state.out_of_service;
    let view = state.view || { kind: "message", tone: "info", headline: null, lines: [] };
    if (view.kind === "paid") {
      if (!paidView) paidUntil = Date.now() + THANK_YOU_MS;
      paidView = view;
    } else if (paidView && view.kind === "welcome" && Date.now() < paidUntil) {
      view = paidView;
      setTimeout(() => { if (state) render(); }, paidUntil - Date.now() + 10);
    } else {
      paidView = null;
    }
    const kind = SECTIONS.includes(view.kind) ? view.kind : "message";
    $("screen").dataset.kind = kind;
    for (const name of SECTIONS) $(name).hidden = name !== kind;

    const banner = $("banner");
    let bannerText = "";
    if (kind === "basket") bannerText = pick(view.headline);
    else if (kind === "welcome" && view.tone !== "info" && view.lines.length) {
      bannerText = pick(view.lines[0]);
    }
    banner.textContent = bannerText;
    banner.dataset.tone = view.tone;
    banner.hidden = !bannerText;

    const titled = { basket: "basket", paying: "checkout", qr: "checkout", paid: "checkout" };
    $("headline").textContent = titled[kind] ? t(titled[kind]) : pick(view.headline);
    if (kind === "basket") {
      renderItems(view.items);
      $("total").textContent = view.total;
    } else if (kind === "paying") {
      $("paying-message").textContent = pick(view.headline);
      $("paying-total").textContent = view.total;
    } else if (kind === "qr") {
      $("qr-image").src = view.qr ? view.qr.image : "";
      $("qr-total").textContent = view.total;
      tick();
    } else if (kind === "paid") {
      $("paid-lines").textContent = view.lines.map(pick).join("\n");
      $("paid-total").textContent = view.total;
    } else if (kind === "message") {
      $("message-lines").textContent = view.lines.map(pick).join("\n");
    }
    rendered.push({ seq, kind, at: performance.timeOrigin + performance.now() });
    if (rendered.length > 2000) rendered.splice(0, 1000);
  }

  $("pay-qr").addEventListener("click", () => send("checkout.pay_qr"));
  $("cancel").addEventListener("click", () => send("cart.cancel"));
  $("qr-cancel").addEventListener("click", () => send("cart.cancel"));
  // A payment-code payment is reversed, or parked while that is unconfirmed (payments).
  $("paying-cancel").addEventListener("click", () => send("cart.cancel"));
  $("call-staff").addEventListener("click", () => {
    send("screen.call_staff");
    $("staff").hidden = false;
  });
  $("staff-close").addEventListener("click", () => { $("staff").hidden = true; });
  $("language").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    langChosen = true;
    if (state) render();
    else for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  });
  setInterval(tick, 250);
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  $("offline").hidden = false;
  connect();
})();
