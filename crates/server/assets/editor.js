// The template editor's field buttons: a click inserts the field (« {Prénom} ») at the cursor
// of the subject or message last focused. Without this script the page lists the fields to type.
(function () {
  "use strict";
  var last = null;
  document.addEventListener("focusin", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-fields-target")) {
      last = event.target;
    }
  });
  document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });
  document.querySelectorAll("button[data-insert]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = last || document.getElementById("corps");
      if (!target) { return; }
      var token = button.getAttribute("data-insert");
      var start = target.selectionStart, end = target.selectionEnd;
      target.setRangeText(token, start, end, "end");
      target.focus();
      target.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });
})();
