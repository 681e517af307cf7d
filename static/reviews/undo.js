/* Undo of the reviewer's last decision (templates/admin/reviews/workspace/_undo.html): the
 * button counts down the project's window and goes away with it; "u" presses it. */
(function () {
  "use strict";

  const undo = document.getElementById("ws-undo");
  if (!undo) return;
  const left = document.getElementById("ws-undo-left");
  const end = Date.now() + Number(undo.dataset.secondsLeft || 0) * 1000;

  function tick() {
    const seconds = Math.max(0, Math.round((end - Date.now()) / 1000));
    if (!seconds) { undo.hidden = true; return false; }
    left.textContent = `${seconds} s left`;
    return true;
  }
  if (tick()) {
    const timer = window.setInterval(() => { if (!tick()) window.clearInterval(timer); }, 1000);
  }

  function typing(target) {
    if (!(target instanceof HTMLElement)) return false;
    if (target.tagName === "INPUT" && ["radio", "checkbox"].includes(target.type)) return false;
    return target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "u" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) || undo.hidden) return;
    event.preventDefault();
    undo.requestSubmit();
  });
})();
