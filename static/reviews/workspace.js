/* Reviewer workspace: keyboard shortcuts, the reject/correct panel, the live correction diff
 * (static/reviews/diff.js), the page layout, raw/markdown text, context search, active-time
 * tracking, rubric scores and severity on keys, and double-submit protection. Untrusted text (the model output, the context and
 * the reviewer's edit) is only ever written with textContent or as text nodes, never as HTML. */
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

  // --- The live diff (static/reviews/diff.js): JSON by path, text cut to the changed hunks.
  const diffWrap = document.getElementById("ws-diff-wrap");
  const jsonError = document.getElementById("ws-json-error");
  const outputView = document.getElementById("ws-output-view");

  function renderDiff() {
    if (!editor || !diffBox) return;
    const result = window.hitlDiff.correctionDiff(original, editor.value);
    window.hitlDiff.render(diffBox, result);
    if (jsonError) {
      jsonError.hidden = !result.jsonError;
      jsonError.textContent = result.jsonError ? `Not valid JSON any more (${result.jsonError}): compared as text.` : "";
    }
    if (diffStats) {
      if (result.paths) {
        diffStats.textContent = result.paths.length
          ? `(${result.paths.length} changed value${result.paths.length === 1 ? "" : "s"})`
          : "(no changes yet)";
      } else {
        diffStats.textContent = result.added || result.removed
          ? `(+${result.added} / −${result.removed} words)`
          : "(no changes yet)";
      }
    }
  }

  let pending = 0;
  if (editor) {
    editor.addEventListener("input", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(renderDiff);
    });
  }

  function goToChange(where) {
    if (mode !== "correct" || !diffWrap) return;
    window.hitlDiff.go(diffWrap, where);
  }

  // --- Layout: both panes as tall as the window leaves above the decision bar.
  const grid = page.querySelector(".ws-grid");
  function fit() {
    const top = grid.getBoundingClientRect().top + window.scrollY;
    document.documentElement.style.setProperty("--ws-pane-top", `${Math.round(top)}px`);
    document.documentElement.style.setProperty("--ws-bar-height", `${form.offsetHeight}px`);
  }
  fit();
  window.addEventListener("resize", fit);
  if (window.ResizeObserver) new ResizeObserver(fit).observe(form);

  // --- Rendered markdown or raw text, for every text on the page; remembered.
  const RAW_KEY = "hitl.workspace.raw";
  function showRaw(raw) {
    page.classList.toggle("ws-show-raw", raw);
    page.querySelectorAll(".ws-raw-toggle").forEach((b) => b.setAttribute("aria-pressed", String(raw)));
    try { window.localStorage.setItem(RAW_KEY, raw ? "1" : ""); } catch (error) { /* private mode */ }
  }
  let storedRaw = "";
  try { storedRaw = window.localStorage.getItem(RAW_KEY) || ""; } catch (error) { /* private mode */ }
  showRaw(storedRaw === "1");
  page.querySelectorAll(".ws-raw-toggle").forEach((button) => {
    button.addEventListener("click", () => showRaw(!page.classList.contains("ws-show-raw")));
  });

  // --- Context search: matches wrapped in <mark> elements built node by node (no HTML parsing).
  const search = document.getElementById("ws-context-search");
  const hits = document.getElementById("ws-context-hits");
  const docs = Array.from(page.querySelectorAll("#ws-context .ws-doc"));
  let marks = [];
  let markIndex = -1;

  function clearMarks() {
    page.querySelectorAll("#ws-context mark.hitl-match").forEach((mark) => {
      const parent = mark.parentNode;
      parent.replaceChild(document.createTextNode(mark.textContent), mark);
      parent.normalize();
    });
    marks = [];
    markIndex = -1;
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  function highlight(root, pattern) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) nodes.push(node);
    let found = 0;
    nodes.forEach((node) => {
      const text = node.nodeValue;
      pattern.lastIndex = 0;
      if (!pattern.test(text)) return;
      pattern.lastIndex = 0;
      const fragment = document.createDocumentFragment();
      let last = 0;
      for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
        if (!match[0]) { pattern.lastIndex++; continue; }
        fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
        const mark = document.createElement("mark");
        mark.className = "hitl-match";
        mark.textContent = match[0];
        fragment.appendChild(mark);
        last = match.index + match[0].length;
        found++;
      }
      fragment.appendChild(document.createTextNode(text.slice(last)));
      node.parentNode.replaceChild(fragment, node);
    });
    return found;
  }

  function runSearch() {
    clearMarks();
    const terms = search.value.trim().split(/\s+/).filter(Boolean);
    docs.forEach((doc) => {
      doc.classList.remove("ws-doc-miss");
      doc.querySelector(".ws-doc-hits").textContent = "";
    });
    if (!terms.length) { hits.textContent = ""; return; }
    const pattern = new RegExp(terms.map(escapeRegExp).join("|"), "giu");
    let total = 0;
    let matched = 0;
    docs.forEach((doc) => {
      // Count in the visible version (rendered or raw); mark both so the toggle keeps them.
      const rendered = highlight(doc.querySelector(".ws-md"), pattern);
      const raw = highlight(doc.querySelector(".ws-raw"), pattern);
      const count = page.classList.contains("ws-show-raw") ? raw : rendered;
      total += count;
      if (count) {
        matched++;
        doc.open = true;
        doc.querySelector(".ws-doc-hits").textContent = `· ${count} match${count === 1 ? "" : "es"}`;
      } else {
        doc.classList.add("ws-doc-miss");
      }
    });
    marks = Array.from(page.querySelectorAll("#ws-context mark.hitl-match"));
    hits.textContent = `${total} match${total === 1 ? "" : "es"} in ${matched} of ${docs.length} document${docs.length === 1 ? "" : "s"}`;
  }

  function nextMatch(step) {
    const visible = marks.filter((mark) => mark.offsetParent !== null);
    if (!visible.length) return;
    markIndex = (markIndex + step + visible.length) % visible.length;
    visible.forEach((mark, i) => mark.classList.toggle("is-current", i === markIndex));
    visible[markIndex].scrollIntoView({ block: "center" });
  }

  if (search) {
    let searchTimer = 0;
    search.addEventListener("input", () => {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(runSearch, 120);
    });
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        window.clearTimeout(searchTimer);
        if (!marks.length) runSearch();
        nextMatch(event.shiftKey ? -1 : 1);
      } else if (event.key === "Escape" && search.value) {
        event.stopPropagation();
        search.value = "";
        runSearch();
      }
    });
  }

  // --- The reject / correct panel.
  function openPanel(which) {
    if (which === "correct" && !editor) return;
    mode = which;
    panel.hidden = false;
    if (editorBlock) editorBlock.hidden = which !== "correct";
    if (outputView && editor) outputView.hidden = which === "correct";
    page.classList.toggle("ws-correcting", which === "correct");
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
    if (editorBlock) editorBlock.hidden = true;
    if (outputView) outputView.hidden = false;
    page.classList.remove("ws-correcting");
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

  // --- Marking a step reloads the page: the decision being written survives it (once,
  // in this tab only). Values go back into the form fields as values, never as HTML.
  const draftKey = `hitl-workspace-draft:${form.action}`;
  function keepDraft() {
    if (!mode) { sessionStorage.removeItem(draftKey); return; }
    const severity = form.querySelector("input[name=severity]:checked");
    sessionStorage.setItem(draftKey, JSON.stringify({
      mode,
      corrected: editor ? editor.value : null,
      reason: reason.value,
      severity: severity ? severity.value : "",
      note: note.value,
    }));
  }
  document.querySelectorAll(".ws-step-form, .ws-inline-form").forEach((stepForm) => {
    stepForm.addEventListener("submit", keepDraft);
  });
  form.addEventListener("submit", () => sessionStorage.removeItem(draftKey));
  const kept = sessionStorage.getItem(draftKey);
  sessionStorage.removeItem(draftKey);
  if (kept && !page.dataset.openPanel) {
    let draft = null;
    try { draft = JSON.parse(kept); } catch (error) { draft = null; }
    if (draft && (draft.mode === "reject" || draft.mode === "correct")) {
      if (editor && typeof draft.corrected === "string") editor.value = draft.corrected;
      reason.value = draft.reason || "";
      note.value = draft.note || "";
      const severity = form.querySelector(`input[name=severity][value="${CSS.escape(draft.severity || "")}"]`);
      if (severity) severity.checked = true;
      openPanel(draft.mode);
    }
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
  // Radios and checkboxes take no text: shortcuts stay on while one has the focus.
  function typing(target) {
    if (!(target instanceof HTMLElement)) return false;
    if (target.tagName === "INPUT" && ["radio", "checkbox"].includes(target.type)) return false;
    return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  }

  // --- Rubric: focus a criterion (Tab, c / C), a digit picks its score and moves on.
  const criteria = Array.from(document.querySelectorAll(".ws-criterion"));
  function focusCriterion(step) {
    if (!criteria.length) return;
    const at = criteria.indexOf(document.activeElement);
    const next = at < 0 ? (step > 0 ? 0 : criteria.length - 1) : (at + step + criteria.length) % criteria.length;
    criteria[next].focus();
  }
  function scoreCriterion(criterion, key) {
    if (key === "Backspace" || key === "Delete") {
      criterion.querySelectorAll("input[type=radio]").forEach((radio) => { radio.checked = false; });
      return true;
    }
    const radio = criterion.querySelector(`input[type=radio][data-digit="${key}"]`);
    if (!radio) return false;
    radio.checked = true;
    criterion.classList.remove("ws-criterion-error");
    const at = criteria.indexOf(criterion);
    if (at >= 0 && at < criteria.length - 1) criteria[at + 1].focus();
    return true;
  }
  criteria.forEach((criterion) => {
    // A click on a choice keeps the criterion focused, so digits keep working.
    criterion.addEventListener("change", () => criterion.focus());
  });

  // --- Severity: s, then a digit 0-3.
  let severityPending = false;
  const severityHint = document.getElementById("ws-severity-hint");
  function pickSeverity(key) {
    const radio = form.querySelector(`input[name=severity][data-digit="${key}"]`);
    if (radio) radio.checked = true;
    return Boolean(radio);
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
    if (severityPending) {
      severityPending = false;
      if (severityHint) severityHint.hidden = true;
      if (/^[0-3]$/.test(event.key) && pickSeverity(event.key)) { event.preventDefault(); return; }
    }
    const criterion = event.target instanceof HTMLElement ? event.target.closest(".ws-criterion") : null;
    if (criterion && (/^[0-9]$/.test(event.key) || event.key === "Backspace" || event.key === "Delete")) {
      if (scoreCriterion(criterion, event.key)) event.preventDefault();
      return;
    }
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
      g: () => goToChange("first"),
      j: () => goToChange("next"),
      k: () => goToChange("previous"),
      m: () => showRaw(!page.classList.contains("ws-show-raw")),
      "/": () => { if (search) search.focus(); },
      "?": () => toggleHelp(),
      s: () => { severityPending = true; if (severityHint) severityHint.hidden = false; },
      c: () => focusCriterion(1),
      C: () => focusCriterion(-1),
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
