// Follows running dataset exports: polls each progress bar's JSON endpoint while
// the build is queued or running, and reloads the page once it is done so the
// files, counts and downloads appear.
(function () {
  "use strict";
  const ACTIVE = new Set(["queued", "running"]);
  const INTERVAL_MS = 1000;

  function follow(widget) {
    const bar = widget.querySelector("progress");
    const text = widget.querySelector(".export-progress-text");
    const url = widget.dataset.url;

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (state) {
          bar.value = state.progress;
          text.textContent = state.text;
          widget.dataset.status = state.status;
          if (ACTIVE.has(state.status)) {
            window.setTimeout(poll, INTERVAL_MS);
          } else {
            window.location.reload();
          }
        })
        .catch(function () {
          window.setTimeout(poll, INTERVAL_MS * 5);
        });
    }

    window.setTimeout(poll, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".export-progress").forEach(function (widget) {
      if (ACTIVE.has(widget.dataset.status)) {
        follow(widget);
      }
    });
  });
})();
