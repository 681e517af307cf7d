/* The comparison review page: 1-4 pick the best candidate, = tie, b all bad, e correct the
 * best; help, active time, lease countdown and double-submit protection. Candidate texts are
 * only ever written with textContent / value, never as HTML. */
(function () {
  "use strict";

  const page = document.querySelector(".ws-compare");
  const form = document.getElementById("compare-form");
  if (!page || !form) return;

  const panel = document.getElementById("ws-panel");
  const correctBlock = document.getElementById("ws-correct-block");
  const editor = document.getElementById("ws-editor");
  const reason = document.getElementById("ws-reason");
  const note = document.getElementById("ws-note");
  const help = document.getElementById("ws-help");
  const submitAllBad = document.getElementById("ws-submit-all-bad");
  const submitCorrect = document.getElementById("ws-submit-correct");
  const sources = JSON.parse(document.getElementById("ws-candidate-sources").textContent);
  let mode = "";
  let prefilled = "";

  // --- The all-bad / correct panel.
  function openPanel(which) {
    if (which === "correct" && !correctBlock) return;
    mode = which;
    panel.hidden = false;
    if (correctBlock) correctBlock.hidden = which !== "correct";
    if (submitAllBad) submitAllBad.hidden = which !== "all_bad";
    if (submitCorrect) submitCorrect.hidden = which !== "correct";
    const first = which === "correct" ? form.querySelector("input[name=winner]:checked") || form.querySelector("input[name=winner]") : reason;
    if (first) first.focus();
  }

  function closePanel() {
    mode = "";
    panel.hidden = true;
  }

  // Choosing the candidate to correct starts the editor from its text (unless already edited).
  form.querySelectorAll("input[name=winner]").forEach((radio) => {
    radio.addEventListener("change", () => {
      document.querySelectorAll(".ws-candidate").forEach((box) => {
        box.classList.toggle("ws-chosen", box.dataset.candidate === radio.value);
      });
      if (editor && (editor.value === "" || editor.value === prefilled)) {
        prefilled = sources[radio.value] || "";
        editor.value = prefilled;
      }
    });
  });

  document.querySelectorAll("[data-open]").forEach((button) => {
    button.addEventListener("click", () => openPanel(button.dataset.open));
  });
  document.getElementById("ws-cancel").addEventListener("click", closePanel);
  if (page.dataset.openPanel === "all_bad" || page.dataset.openPanel === "correct") {
    openPanel(page.dataset.openPanel);
  }

  // --- Help.
  function toggleHelp(show) {
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  document.getElementById("ws-help-toggle").addEventListener("click", () => toggleHelp());

  // --- Raw text or rendered markdown.
  function toggleRaw() {
    page.classList.toggle("ws-show-raw");
  }

  // --- Active time: counted while the tab is visible; the server caps it at the claim's age.
  let activeMs = 0;
  let visibleSince = document.visibilityState === "visible" ? performance.now() : null;
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      visibleSince = performance.now();
    } else if (visibleSince !== null) {
      activeMs += performance.now() - visibleSince;
      visibleSince = null;
    }
  });
  function activeSeconds() {
    const now = visibleSince === null ? 0 : performance.now() - visibleSince;
    return ((activeMs + now) / 1000).toFixed(1);
  }

  // --- Lease countdown.
  const lease = document.getElementById("ws-lease");
  const leaseEnd = Date.now() + Number(page.dataset.leaseSeconds || 0) * 1000;
  function tickLease() {
    const left = Math.max(0, Math.round((leaseEnd - Date.now()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    lease.textContent = left > 0 ? `${minutes}:${seconds} left` : "expired: reload to claim again";
    lease.classList.toggle("ws-bad", left < 120);
  }
  if (lease) { tickLease(); setInterval(tickLease, 1000); }

  // --- Submitting: once only (the server refuses a second submit anyway).
  let submitted = false;
  form.addEventListener("submit", (event) => {
    if (submitted) { event.preventDefault(); return; }
    submitted = true;
    document.getElementById("ws-active-seconds").value = activeSeconds();
    window.setTimeout(() => {
      form.querySelectorAll("button").forEach((button) => { button.disabled = true; });
    }, 0);
  });

  function submitWith(button) {
    if (button && !button.disabled && !submitted) form.requestSubmit(button);
  }

  // --- Keyboard shortcuts.
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName) ||
       (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)));
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      if (typing(event.target)) event.target.blur();
      else if (!help.hidden) toggleHelp(false);
      else if (mode) closePanel();
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && mode) {
      event.preventDefault();
      submitWith(mode === "correct" ? submitCorrect : submitAllBad);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (mode && /^[1-9]$/.test(event.key)) {
      // In the panel digits pick a reason, as on single items.
      const option = reason.options[Number(event.key)];
      if (option) { reason.value = option.value; event.preventDefault(); }
      return;
    }
    if (/^[1-4]$/.test(event.key)) {
      event.preventDefault();
      submitWith(form.querySelector(`.ws-pick[data-key="${event.key}"]`));
      return;
    }
    const actions = {
      "=": () => submitWith(document.getElementById("ws-tie")),
      b: () => openPanel("all_bad"),
      e: () => openPanel("correct"),
      n: () => submitWith(document.getElementById("ws-skip")),
      m: toggleRaw,
      "?": () => toggleHelp(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  reason.addEventListener("change", () => {
    note.required = reason.value === "other";
  });
})();
