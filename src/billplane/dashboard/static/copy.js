// Copy buttons: <button data-copy="ID"> copies the text of the element with that id.
// The Clipboard API needs a secure context (https or localhost); elsewhere, fall back to a
// selected textarea and execCommand so the button still works on a plain-http intranet host.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  return new Promise(function (resolve, reject) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    if (ok) { resolve(); } else { reject(new Error("copy refused")); }
  });
}

document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) { return; }
  var source = document.getElementById(button.dataset.copy);
  if (!source) { return; }
  copyText(source.textContent).then(function () {
    button.textContent = "Copied";
    button.classList.add("is-copied");
    setTimeout(function () { button.textContent = "Copy"; button.classList.remove("is-copied"); }, 2000);
  }, function () {
    button.textContent = "Select and copy";
  });
});
