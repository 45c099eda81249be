// Forms with data-confirm="question" (revoking or rotating a token) ask before they are sent.
// Declined: nothing is sent. Accepted: the form says confirm=yes and the server acts at once.
// Without this script the server asks on a page of its own: one click alone never acts.
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (!question) { return; }
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  var field = form.querySelector('input[name="confirm"]');
  if (field) { field.value = "yes"; }
});
