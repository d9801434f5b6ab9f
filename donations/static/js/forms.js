// After a form comes back with errors, move the focus to the summary of them (or, on a page
// without one, to the first error), so that a screen reader announces it and a keyboard reader
// starts there: the summary's links lead to each field.
(function () {
  "use strict";
  var summary = document.querySelector(".form-errors") || document.querySelector(".field-error[role=alert], .field-error");
  if (!summary) { return; }
  if (!summary.hasAttribute("tabindex")) { summary.setAttribute("tabindex", "-1"); }
  summary.focus();
})();
