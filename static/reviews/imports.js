// Follows a running file import: polls its JSON progress endpoint and updates the
// bar and the counts; reloads once it is finished so the refused rows appear.
(function () {
  "use strict";
  const INTERVAL_MS = 1000;

  function follow(widget) {
    const bar = widget.querySelector("progress");
    const set = function (name, value) {
      const node = widget.querySelector(".import-" + name);
      if (node) {
        node.textContent = value === null || value === undefined ? "?" : String(value);
      }
    };

    function poll() {
      fetch(widget.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (state) {
          bar.max = state.total_rows || 1;
          bar.value = state.processed_rows;
          set("status", state.status_label);
          set("processed", state.processed_rows);
          set("total", state.total_rows);
          set("created", state.created);
          set("existing", state.existing);
          set("errors", state.errors);
          if (state.finished) {
            window.location.reload();
          } else {
            window.setTimeout(poll, INTERVAL_MS);
          }
        })
        .catch(function () {
          window.setTimeout(poll, INTERVAL_MS * 5);
        });
    }

    window.setTimeout(poll, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".import-progress").forEach(function (widget) {
      if (widget.dataset.finished !== "1") {
        follow(widget);
      }
    });
  });
})();
