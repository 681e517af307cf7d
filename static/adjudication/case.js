/* Case page: show the own-decision fields only for "neither", fill the editor
   from a review, keyboard shortcuts (the own decision's verdict and severity too,
   decide-and-next), one submit only, and the lease clock. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("adj-form");
    if (!form) { return; }
    var own = document.getElementById("adj-own");
    var editor = form.querySelector("textarea[name=final_output]");
    var rationale = form.querySelector("textarea[name=rationale]");
    var radios = form.querySelectorAll("input[name=upheld]");

    function sync() {
      var chosen = form.querySelector("input[name=upheld]:checked");
      own.hidden = !(chosen && chosen.value === "neither");
    }
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();

    form.querySelectorAll(".adj-start-from").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById("adj-source-" + button.dataset.source);
        if (source) {
          editor.value = JSON.parse(source.textContent);
          editor.focus();
        }
      });
    });

    function typing(target) {
      // Radios take no text: keys stay on while one has the focus.
      if (target && target.tagName === "INPUT" && (target.type === "radio" || target.type === "checkbox")) {
        return false;
      }
      return target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" ||
        target.tagName === "SELECT" || target.isContentEditable);
    }
    var severityPending = false;
    function pick(name, value) {
      var radio = form.querySelector("input[name=" + name + "][value=" + value + "]");
      if (radio) { radio.checked = true; }
      return Boolean(radio);
    }
    var ownRow = document.getElementById("adj-own-row");
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && typing(event.target)) {
        event.target.blur();  // leave the text box: the keys work again
        return;
      }
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        // Ctrl+Shift+Enter: decide, then claim and open the next case.
        form.requestSubmit(event.shiftKey ? document.getElementById("adj-decide-next") : null);
        return;
      }
      if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) { return; }
      if (!own.hidden) {
        if (severityPending) {
          severityPending = false;
          var level = ["none", "minor", "major", "critical"][Number(event.key)];
          if (/^[0-3]$/.test(event.key) && pick("severity", level)) { event.preventDefault(); return; }
        }
        var verdict = { a: "approve", r: "reject", e: "correct" }[event.key];
        if (verdict && pick("verdict", verdict)) {
          event.preventDefault();
          if (verdict === "correct") { editor.focus(); }
          return;
        }
        if (event.key === "s") { severityPending = true; event.preventDefault(); return; }
      }
      var index = ["1", "2", "3"].indexOf(event.key);
      if (index >= 0 && radios[index]) {
        radios[index].checked = true;
        sync();
        // Own decision: focus its row so a / r / e and s then 0-3 work at once.
        (radios[index].value === "neither" ? ownRow : rationale).focus();
        event.preventDefault();
      }
    });

    form.addEventListener("submit", function () {
      // One decision per claim: the server refuses a second, this avoids sending it.
      // After the form data is taken: a disabled submitter would drop its name (and_next).
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });

    var lease = document.getElementById("adj-lease");
    if (lease && lease.dataset.expires) {
      var expires = new Date(lease.dataset.expires).getTime();
      var tick = function () {
        var left = Math.round((expires - Date.now()) / 1000);
        if (left <= 0) {
          lease.textContent = "expired: claim the case again";
          lease.classList.add("adj-bad");
          return;
        }
        lease.textContent = Math.floor(left / 60) + " min " + (left % 60) + " s";
        window.setTimeout(tick, 1000);
      };
      tick();
    }
  });
})();
