// carpark-gateway console: live panels over server-sent events, actions over fetch.
// No library, no build step: the server renders every panel; this only swaps them in.
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const liveState = $("#live-state");
  const toast = $("#toast");
  let toastTimer = null;

  function say(text, isError) {
    toast.textContent = text;
    toast.className = isError ? "error" : "";
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, isError ? 8000 : 4000);
  }

  function setState(state, text) {
    liveState.dataset.state = state;
    liveState.textContent = text;
  }

  // -- swapping a panel in without losing what the operator is typing ---------------------
  function swap(id, html) {
    const old = document.getElementById(id);
    if (!old) return;
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const fresh = tpl.content.firstElementChild;
    if (!fresh) return;
    const active = document.activeElement;
    let focusKey = null, selection = null;
    $$("input[name], select[name], textarea[name]", old).forEach((field) => {
      const key = fieldKey(field);
      const twin = $$("input[name], select[name], textarea[name]", fresh).find((f) => fieldKey(f) === key);
      if (!twin || field.type === "hidden") return;
      if (field === active) {
        focusKey = key;
        try { selection = [field.selectionStart, field.selectionEnd]; } catch (e) { selection = null; }
      }
      if (field.dataset.touched) { twin.value = field.value; twin.dataset.touched = "1"; }
    });
    old.replaceWith(fresh);
    if (focusKey) {
      const again = $$("input[name], select[name], textarea[name]", fresh).find((f) => fieldKey(f) === focusKey);
      if (again) {
        again.focus();
        if (selection && selection[0] !== null) { try { again.setSelectionRange(selection[0], selection[1]); } catch (e) { /* not a text field */ } }
      }
    }
    if (id === "feed") filterFeed();
    ages(fresh);
  }

  function fieldKey(field) {
    const form = field.closest("form");
    return (form ? form.getAttribute("action") : "") + "|" + field.name + "|" + (field.getAttribute("aria-label") || "");
  }

  document.addEventListener("input", (e) => { if (e.target.name) e.target.dataset.touched = "1"; });
  document.addEventListener("change", (e) => { if (e.target.name) e.target.dataset.touched = "1"; });

  // -- the live stream ----------------------------------------------------------------------
  let source = null;
  function connect() {
    source = new EventSource("/console/live");
    source.addEventListener("hello", () => setState("live", "live"));
    source.addEventListener("panel", (e) => { const m = JSON.parse(e.data); swap(m.id, m.html); });
    source.addEventListener("feed", (e) => addFeed(JSON.parse(e.data).html));
    source.addEventListener("stale", (e) => { if (JSON.parse(e.data).panel === "sessions") refreshSessions(); });
    source.onerror = () => {
      setState("reconnecting", "reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (signed out, or restarting): check, then retry.
        source = null;
        fetch("/console/panels/sessions", { headers: { "X-Console": "fetch" } })
          .then((r) => { if (r.status === 401) location.assign("/console/login"); })
          .catch(() => {})
          .finally(() => setTimeout(() => { if (!source) connect(); }, 3000));
      }
    };
  }

  // -- the feed -----------------------------------------------------------------------------
  const feedLane = $("#feed-lane"), feedType = $("#feed-type");
  function shown(row) {
    return (!feedLane.value || row.dataset.lane === feedLane.value) &&
      (!feedType.value || row.dataset.category === feedType.value);
  }
  function filterFeed() { $$("#feed .ev").forEach((row) => { row.hidden = !shown(row); }); }
  function addFeed(html) {
    const feed = $("#feed");
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const rows = Array.from(tpl.content.children).filter((row) => !feed.querySelector(`[data-seq="${row.dataset.seq}"]`));
    rows.forEach((row) => { row.hidden = !shown(row); ages(row); });
    feed.prepend(...rows);
    while (feed.children.length > 200) feed.lastElementChild.remove();
  }
  feedLane.addEventListener("change", filterFeed);
  feedType.addEventListener("change", filterFeed);

  // -- the session search -------------------------------------------------------------------
  // Fees change with every commit on a busy site: refresh at most every two seconds.
  let sessionsTimer = null, sessionsBusy = false, sessionsAgain = false, sessionsAt = 0, sessionsLater = null;
  function query() { const q = $("#session-q"); return q ? q.value : ""; }
  function refreshSessions(now) {
    const wait = 2000 - (Date.now() - sessionsAt);
    if (!now && wait > 0) {
      if (!sessionsLater) sessionsLater = setTimeout(() => { sessionsLater = null; refreshSessions(); }, wait);
      return;
    }
    if (sessionsBusy) { sessionsAgain = true; return; }
    sessionsBusy = true;
    sessionsAt = Date.now();
    fetch("/console/panels/sessions?q=" + encodeURIComponent(query()), { headers: { "X-Console": "fetch" } })
      .then((r) => { if (r.status === 401) { location.assign("/console/login"); return null; } return r.ok ? r.text() : null; })
      .then((html) => { if (html) swap("sessions", html); })
      .catch(() => {})
      .finally(() => {
        sessionsBusy = false;
        if (sessionsAgain) { sessionsAgain = false; refreshSessions(true); }
      });
  }
  document.addEventListener("input", (e) => {
    if (e.target.id !== "session-q") return;
    clearTimeout(sessionsTimer);
    sessionsTimer = setTimeout(() => refreshSessions(true), 250);
  });
  document.addEventListener("submit", (e) => {
    if (e.target.classList.contains("search")) { e.preventDefault(); refreshSessions(true); }
  });

  // -- actions ------------------------------------------------------------------------------
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!form.hasAttribute("data-action")) return;
    e.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    if (e.submitter && e.submitter.name) body.set(e.submitter.name, e.submitter.value);
    const buttons = $$("button", form);
    buttons.forEach((b) => { b.disabled = true; });
    fetch(form.getAttribute("action"), {
      method: "POST",
      headers: { "X-Console": "fetch", "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
    })
      .then((r) => r.json().catch(() => ({})).then((data) => ({ status: r.status, data: data })))
      .then(({ status, data }) => {
        if (status === 401) { location.assign("/console/login"); return; }
        if (status >= 400) { say(data.detail || ("Refused (" + status + ")"), true); return; }
        say(data.message || "Done");
        $$("input[type=text]", form).forEach((f) => { if (f.name === "reason" || f.name === "plate") { f.value = ""; delete f.dataset.touched; } });
      })
      .catch(() => say("The gateway did not answer: try again", true))
      .finally(() => buttons.forEach((b) => { b.disabled = false; }));
  });

  // -- times as "12 s ago" --------------------------------------------------------------------
  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    return new Date(iso).toLocaleTimeString();
  }
  function ages(root) {
    $$("[data-at]", root).forEach((t) => { t.title = t.dataset.at; if (t.closest(".decision, .alarm")) t.textContent = ago(t.dataset.at); });
  }
  setInterval(() => ages(document), 1000);
  ages(document);
  filterFeed();
  connect();
})();
