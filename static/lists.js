/*
 * List pages: the stock row's panel and paging (issue 14 items 5 and 6). Loaded after app.js;
 * the same CSP rules (no inline script, behaviour off data- attributes).
 *
 *   [data-opens-panel="#dialog"] on an htmx link: its fragment is swapped into the dialog,
 *     which then opens as a modal; focus moves to the first field, Escape (or a
 *     [data-closes-panel] button, or the "stock-panel-close" event a successful post sends)
 *     closes it, and focus goes back to the link that opened it (found again by id: the row
 *     may have been re-rendered meanwhile).
 *   [data-to-top="#element"] on a pager link: after its page is swapped in, the view scrolls
 *     to that element and focus moves there, so the next page starts at its top.
 */
(function () {
  "use strict";

  var openerId = null;
  var toTop = null;

  function panelOf(elt) {
    var selector = elt && elt.getAttribute && elt.getAttribute("data-opens-panel");
    return selector ? document.querySelector(selector) : null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (panelOf(elt)) { openerId = elt.id || null; }
    toTop = (elt && elt.getAttribute && elt.getAttribute("data-to-top")) || null;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var elt = event.detail.requestConfig ? event.detail.requestConfig.elt : event.detail.elt;
    var dialog = panelOf(elt);
    if (dialog && !dialog.open) {
      dialog.showModal();
      var first = dialog.querySelector("input:not([type=hidden])");
      if (first) { first.focus(); }
    }
    if (toTop) {
      var top = document.querySelector(toTop);
      toTop = null;
      if (top) {
        top.scrollIntoView({ block: "start" });
        top.focus({ preventScroll: true });
      }
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-closes-panel]");
    var dialog = button && button.closest("dialog");
    if (dialog) { dialog.close(); }
  });

  document.addEventListener("stock-panel-close", function () {
    var dialog = document.querySelector("dialog[open]");
    if (dialog) { dialog.close(); }
  });

  // Escape closes a modal dialog by itself; whichever way it closed, focus goes back.
  document.addEventListener("close", function (event) {
    if (event.target.tagName !== "DIALOG") { return; }
    var opener = openerId && document.getElementById(openerId);
    if (opener) { opener.focus(); }
  }, true);
}());
