// After a submit, make sure focus is on what the page marked with `autofocus` (the error summary,
// or the result of what was pressed, which focusing scrolls into view), so a screen reader reads it
// first: browsers skip `autofocus` in some cases (an address with a #fragment, a restored page).
// A file, not an inline script: the Content Security Policy runs scripts from this origin only.
(function () {
  var target = document.querySelector("[autofocus]");
  if (target && document.activeElement !== target) { target.focus(); }
})();
