/* Reviewer workspace: keyboard shortcuts, the reject/correct panel, a live word diff,
 * active-time tracking and double-submit protection. Untrusted text (the model output
 * and the reviewer's edit) is only ever written with textContent, never as HTML. */
(function () {
  "use strict";

  const page = document.querySelector(".ws-review");
  const form = document.getElementById("review-form");
  if (!page || !form) return;

  const panel = document.getElementById("ws-panel");
  const editorBlock = document.getElementById("ws-editor-block");
  const editor = document.getElementById("ws-editor");
  const diffBox = document.getElementById("ws-diff");
  const diffStats = document.getElementById("ws-diff-stats");
  const reason = document.getElementById("ws-reason");
  const note = document.getElementById("ws-note");
  const help = document.getElementById("ws-help");
  const submitReject = document.getElementById("ws-submit-reject");
  const submitCorrect = document.getElementById("ws-submit-correct");
  const original = JSON.parse(document.getElementById("ws-original-output").textContent);
  let mode = "";

  // --- Word diff: the same tokens as reviews/diffing.py (words, punctuation, whitespace).
  const TOKEN = /\s+|[\p{L}\p{N}\p{M}_]+|[^\p{L}\p{N}\p{M}_\s]/gu;
  const MAX_CELLS = 4000000;

  function tokenize(text) {
    return text.match(TOKEN) || [];
  }

  function diff(oldText, newText) {
    const a = tokenize(oldText);
    const b = tokenize(newText);
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start++;
    let endA = a.length;
    let endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    const ops = [];
    if (start > 0) ops.push(["equal", a.slice(0, start).join("")]);
    const midA = a.slice(start, endA);
    const midB = b.slice(start, endB);
    if (midA.length * midB.length > MAX_CELLS) {
      // Too large for a live LCS: show the changed middle as one replacement.
      if (midA.length) ops.push(["delete", midA.join("")]);
      if (midB.length) ops.push(["insert", midB.join("")]);
    } else {
      lcsOps(midA, midB).forEach((op) => ops.push(op));
    }
    if (endA < a.length) ops.push(["equal", a.slice(endA).join("")]);
    return merge(ops);
  }

  function lcsOps(a, b) {
    const n = a.length;
    const m = b.length;
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[i] === b[j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    const ops = [];
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { ops.push(["equal", a[i]]); i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) { ops.push(["delete", a[i]]); i++; }
      else { ops.push(["insert", b[j]]); j++; }
    }
    while (i < n) ops.push(["delete", a[i++]]);
    while (j < m) ops.push(["insert", b[j++]]);
    return ops;
  }

  function merge(ops) {
    const out = [];
    ops.forEach(([op, text]) => {
      if (!text) return;
      const last = out[out.length - 1];
      if (last && last[0] === op) last[1] += text;
      else out.push([op, text]);
    });
    return out;
  }

  function renderDiff() {
    if (!editor || !diffBox) return;
    const ops = diff(original, editor.value);
    const fragment = document.createDocumentFragment();
    let added = 0;
    let removed = 0;
    ops.forEach(([op, text]) => {
      const node = document.createElement(op === "equal" ? "span" : op === "delete" ? "del" : "ins");
      node.textContent = text;
      fragment.appendChild(node);
      if (op === "insert") added += tokenize(text).filter((t) => t.trim()).length;
      if (op === "delete") removed += tokenize(text).filter((t) => t.trim()).length;
    });
    diffBox.replaceChildren(fragment);
    if (diffStats) {
      diffStats.textContent = added || removed
        ? `(+${added} / −${removed} words)`
        : "(no changes yet)";
    }
  }

  let pending = 0;
  if (editor) {
    editor.addEventListener("input", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(renderDiff);
    });
  }

  // --- The reject / correct panel.
  function openPanel(which) {
    if (which === "correct" && !editor) return;
    mode = which;
    panel.hidden = false;
    if (editorBlock) editorBlock.hidden = which !== "correct";
    if (submitReject) submitReject.hidden = which !== "reject";
    if (submitCorrect) submitCorrect.hidden = which !== "correct";
    if (which === "correct") {
      renderDiff();
      editor.focus();
    } else {
      reason.focus();
    }
  }

  function closePanel() {
    mode = "";
    panel.hidden = true;
  }

  document.querySelectorAll("[data-open]").forEach((button) => {
    button.addEventListener("click", () => openPanel(button.dataset.open));
  });
  document.getElementById("ws-cancel").addEventListener("click", closePanel);
  if (page.dataset.openPanel === "reject" || page.dataset.openPanel === "correct") {
    openPanel(page.dataset.openPanel);
  } else {
    closePanel();
  }

  // --- Help.
  const helpToggle = document.getElementById("ws-help-toggle");
  function toggleHelp(show) {
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  helpToggle.addEventListener("click", () => toggleHelp());

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

  function submitWith(buttonId) {
    const button = document.getElementById(buttonId);
    if (button && !submitted) form.requestSubmit(button);
  }

  // --- Keyboard shortcuts.
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      // First leave the text box (shortcuts work again), then close help or the form.
      if (typing(event.target)) event.target.blur();
      else if (!help.hidden) toggleHelp(false);
      else if (mode) closePanel();
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && mode) {
      event.preventDefault();
      submitWith(mode === "correct" ? "ws-submit-correct" : "ws-submit-reject");
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (mode && /^[1-9]$/.test(event.key)) {
      const option = reason.options[Number(event.key)];
      if (option) { reason.value = option.value; event.preventDefault(); }
      return;
    }
    const actions = {
      a: () => submitWith("ws-approve"),
      r: () => openPanel("reject"),
      e: () => openPanel("correct"),
      n: () => submitWith("ws-skip"),
      "?": () => toggleHelp(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // Typing a note is required for "other": say so next to the field.
  reason.addEventListener("change", () => {
    note.required = reason.value === "other";
  });
})();
