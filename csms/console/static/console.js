// CSMS console: live page blocks over Server-Sent Events, and command forms built from OCPP schemas.
// Plain browser JavaScript, no build step and no third-party code.
"use strict";
(() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const status = (text) => { const el = document.getElementById("live-status"); if (el) el.textContent = text; };

  // ---- live blocks: on a change, re-read the page's [data-live-block] fragments (one request in flight each)
  const state = new Map();
  function refresh(name) {
    const s = state.get(name) || {busy: false, again: false};
    state.set(name, s);
    if (s.busy) { s.again = true; return; }
    s.busy = true;
    const url = new URL(location.href);
    url.searchParams.set("fragment", name);
    fetch(url, {credentials: "same-origin", headers: {Accept: "text/html"}})
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => { if (html !== null) swap(name, html); })
      .catch(() => {})
      .finally(() => { s.busy = false; if (s.again) { s.again = false; refresh(name); } });
  }
  function swap(name, html) {
    const old = document.querySelector(`[data-live-block="${name}"]`);
    if (!old) return;
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const fresh = tpl.content.firstElementChild;
    if (!fresh) return;
    const picked = new Set([...old.querySelectorAll("input.pick:checked")].map((i) => i.value));
    const focused = document.activeElement && old.contains(document.activeElement) ? document.activeElement.id : "";
    fresh.querySelectorAll("input.pick").forEach((i) => { i.checked = picked.has(i.value); });
    old.replaceWith(fresh);
    if (focused) { const f = document.getElementById(focused); if (f) f.focus(); }
    countPicked();
    scrollable();
  }
  // A table wider than a tablet's screen scrolls inside itself; without a link or field in it the keyboard could
  // not scroll it, so it takes focus (arrow keys scroll it) while it overflows.
  function scrollable() {
    document.querySelectorAll("table").forEach((t) => {
      if (t.scrollWidth > t.clientWidth + 1) t.setAttribute("tabindex", "0");
      else if (t.getAttribute("tabindex") === "0") t.removeAttribute("tabindex");
    });
  }
  window.addEventListener("resize", scrollable);
  const refreshAll = () => document.querySelectorAll("[data-live-block]").forEach((el) => refresh(el.dataset.liveBlock));

  function connect() {
    const kinds = document.body.dataset.liveKinds;
    if (!kinds || !window.EventSource) return;
    const url = new URL("/ui/live", location.origin);
    url.searchParams.set("kinds", kinds);
    if (document.body.dataset.liveStation) url.searchParams.set("station", document.body.dataset.liveStation);
    const source = new EventSource(url);
    source.addEventListener("hello", (e) => { status("live · " + JSON.parse(e.data).node); refreshAll(); });
    source.addEventListener("change", refreshAll);
    source.addEventListener("dropped", () => { source.close(); status("reconnecting"); setTimeout(connect, 1000); });
    source.onerror = () => status("reconnecting");
  }

  // ---- command forms: typed JSON from the fields, validated in the page, the server's answer shown
  function setPath(target, path, value) {
    const parts = path.split(".");
    let node = target;
    parts.slice(0, -1).forEach((p) => { node = node[p] = node[p] || {}; });
    node[parts[parts.length - 1]] = value;
  }
  function payloadOf(form) {
    const payload = {};
    form.querySelectorAll("[data-path]").forEach((el) => {
      el.setCustomValidity("");
      const raw = el.value.trim();
      if (raw === "") return;
      const kind = el.dataset.kind;
      let value = raw;
      if (kind === "integer") value = parseInt(raw, 10);
      else if (kind === "number") value = parseFloat(raw);
      else if (kind === "boolean") value = raw === "true";
      else if (kind === "list") value = raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
      else if (kind === "json") {
        try { value = JSON.parse(raw); } catch (err) {
          el.setCustomValidity("not valid JSON: " + err.message);
          throw new Error(el.dataset.path + " is not valid JSON");
        }
      }
      setPath(payload, el.dataset.path, value);
    });
    return payload;
  }
  function describe(station, response, body) {
    const head = station ? station + ": " : "";
    if (body && body.error) return `${head}${response.status} ${body.error.message}`;
    const answer = body.result ? JSON.stringify(body.result) : body.error ? JSON.stringify(body.error) : "";
    return `${head}${response.status} ${body.status} ${answer}`;
  }
  async function send(station, action, payload) {
    const response = await fetch(`/ui/stations/${encodeURIComponent(station)}/commands/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(payload),
    });
    let body = {};
    try { body = await response.json(); } catch (err) { body = {error: {message: "no JSON answer"}}; }
    return {response, body};
  }
  const picked = () => [...document.querySelectorAll("input.pick:checked")].map((i) => i.value).slice(0, 100);
  function countPicked() { const el = document.getElementById("picked"); if (el) el.textContent = String(picked().length); }

  document.addEventListener("change", (e) => { if (e.target.matches && e.target.matches("input.pick")) countPicked(); });
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.matches("form[data-command]")) return;
    e.preventDefault();
    const out = form.querySelector("output.result");
    out.className = "result";
    let payload;
    try { payload = payloadOf(form); } catch (err) { form.reportValidity(); out.className = "result error"; out.textContent = err.message; return; }
    if (!form.reportValidity()) return;
    const stations = form.hasAttribute("data-bulk") ? picked() : [form.dataset.station];
    if (!stations.length) { out.className = "result error"; out.textContent = "Select at least one station."; return; }
    out.textContent = "sending…";
    const lines = [];
    let failed = false;
    for (const station of stations) {
      const {response, body} = await send(station, form.dataset.command, payload);
      failed = failed || !response.ok;
      lines.push(describe(stations.length > 1 || form.hasAttribute("data-bulk") ? station : "", response, body));
      out.textContent = lines.join("\n");
    }
    out.className = failed ? "result error" : "result";
  });

  connect();
  countPicked();
  scrollable();
})();
