// Copy buttons of the setup portal (progressive enhancement: without
// script, the values stay in read-only fields to select and copy).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var status = document.getElementById("copied");
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) {
      return;
    }
    b.hidden = false;
    b.addEventListener("click", function () {
      var field = document.getElementById(b.getAttribute("data-copy"));
      if (!field) {
        return;
      }
      navigator.clipboard.writeText(field.value).then(function () {
        if (status) {
          status.textContent = b.getAttribute("data-copied") || "";
        }
      });
    });
  });
});
