/* Adjudication queue: choosing a project in the filter applies it at once
   (without JavaScript the <noscript> Filter button does the same). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("adj-project");
    if (!select) { return; }
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
