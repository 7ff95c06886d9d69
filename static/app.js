/*
 * Stockroom page behaviour. The CSP allows scripts from 'self' only: no inline scripts and
 * no hx-on attributes anywhere; behaviour lives here and hangs off data- attributes.
 *
 * How results and refusals reach the page (the pattern every view follows):
 *   - success: 200 with the updated fragment, plus HX-Trigger {"toast": {message, level}}
 *     (and e.g. "stock-changed" so badges and tiles listening with `from:body` refresh);
 *   - refusal (bad input, a service's StockroomError): 409 or 422 with the SAME fragment
 *     re-rendered showing the error in place, plus a toast of level "error". base.html's
 *     htmx-config responseHandling swaps 409/422, so the row/form shows its own error;
 *   - other errors (403, 404, 500): not swapped; the server's toast (or a generic one here)
 *     says what happened;
 *   - lost session: 401 + HX-Redirect to sign-in (htmx follows it); expired CSRF token:
 *     HX-Refresh with a flashed message.
 *
 * Other hooks: data-confirm="Question?" on a form or submit button asks first;
 * <time data-countdown datetime="..."> (and every |time_tag) keeps its relative text fresh.
 */
(function () {
  "use strict";

  var TOAST_MS = { success: 5000, info: 6000, warning: 9000, error: 12000 };

  function showToast(message, level) {
    var box = document.getElementById("toasts");
    if (!box || !message) { return; }
    level = TOAST_MS[level] ? level : "info";
    // Toasts never pile up: a later answer replaces an earlier error or warning (a success
    // after a refusal means the refusal is dealt with), and one error replaces another.
    var stale = box.querySelectorAll(".toast-error, .toast-warning" + (level === "error" ? "" : ", .toast-" + level));
    for (var i = 0; i < stale.length; i++) { stale[i].remove(); }
    var toast = document.createElement("div");
    toast.className = "toast toast-" + level;
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    var text = document.createElement("span");
    text.textContent = message;  // textContent: messages may quote user input
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(text);
    toast.appendChild(close);
    box.appendChild(toast);
    window.setTimeout(function () { toast.remove(); }, TOAST_MS[level]);
  }

  // HX-Trigger: {"toast": {"message": "...", "level": "success"}} arrives as a "toast" event.
  document.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message || detail.value, detail.level);
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && /"toast"/.test(xhr.getResponseHeader("HX-Trigger") || "")) { return; }
    showToast("That did not work (" + (xhr ? xhr.status : "?") + "). Please try again: a form is applied at most once.", "error");
  });

  document.addEventListener("htmx:sendError", function () {
    showToast("Could not reach Stockroom. Check your connection and try again.", "error");
  });

  // After a fragment comes back with an error, put the keyboard on the first bad field.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.elt;
    if (!target || !target.querySelector) { return; }
    var invalid = target.querySelector("[aria-invalid='true']");
    if (invalid) { invalid.focus(); }
  });

  // Confirmation for destructive actions: <form data-confirm> or <button data-confirm>.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var question = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopPropagation();  // capture phase: htmx's own submit handler never sees it
    }
  }, true);

  // Relative times ("in 4 min", "3 h ago") kept fresh; the exact time stays in the title.
  function relative(date) {
    var seconds = Math.round((date.getTime() - Date.now()) / 1000);
    var future = seconds > 0;
    seconds = Math.abs(seconds);
    if (seconds < 45) { return future ? "in a few seconds" : "just now"; }
    var units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][1]) {
        var amount = Math.round(seconds / units[i][1]);
        return future ? "in " + amount + " " + units[i][0] : amount + " " + units[i][0] + " ago";
      }
    }
    return future ? "in 1 min" : "1 min ago";  // 45-59 s: never a blank cell
  }

  function refreshTimes() {
    // |time_tag output (datetime + exact time in title) is always relative, so it is refreshed too.
    var times = document.querySelectorAll("time[data-countdown], time[datetime][title]");
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) { times[i].textContent = relative(when); }
    }
  }
  window.setInterval(refreshTimes, 15000);
  document.addEventListener("htmx:afterSettle", refreshTimes);

  // Long uploads (the product import): <form data-progress="#box"> shows the upload's
  // progress, then an open-ended bar while the server checks or applies the rows.
  function progressBox(event) {
    var form = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form[data-progress]");
    return form ? document.querySelector(form.getAttribute("data-progress")) : null;
  }
  function showProgress(box, percent, text) {
    var bar = box.querySelector("progress");
    if (percent === null) { bar.removeAttribute("value"); } else { bar.value = percent; }
    box.querySelector("[data-progress-text]").textContent = text;
    box.hidden = false;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var box = progressBox(event);
    if (box) { showProgress(box, 0, "Uploading…"); }
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var box = progressBox(event);
    if (!box || !event.detail.lengthComputable) { return; }
    var percent = Math.round(100 * event.detail.loaded / event.detail.total);
    if (percent < 100) {
      showProgress(box, percent, "Uploading… " + percent + "%");
    } else {
      showProgress(box, null, "Uploaded; checking every row (a 100,000-row file takes a few seconds)…");
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var box = progressBox(event);
    if (box) { box.hidden = true; }
  });

  // The stock chart's readout: the figures at the marker under the pointer or keyboard focus.
  function showReadout(event) {
    var marker = event.target.closest && event.target.closest("[data-readout]");
    var readout = document.getElementById("chart-readout");
    if (!readout) { return; }
    if (event.type === "focusout" || event.type === "mouseout") {
      readout.textContent = readout.getAttribute("data-default");
    } else if (marker) {
      readout.textContent = marker.getAttribute("data-readout");
    }
  }
  ["mouseover", "focusin", "mouseout", "focusout"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      if (event.target.closest && event.target.closest(".chart")) { showReadout(event); }
    });
  });

  // Lost typing (issue 14): every submit keeps its form's fields in sessionStorage (this tab
  // only; never passwords, files or one-time tokens). If the session had ended, the sign-in
  // page sends the staff member back with a [data-restore-drafts] notice, and the fields are
  // put back for them to check and send: nothing is ever resent by itself.
  var DRAFTS = "stockroom-drafts";
  var NOT_KEPT = { csrf_token: true, submit_token: true };

  function formKey(form) {
    return location.pathname + " " + (form.getAttribute("hx-post") || form.getAttribute("action") || "");
  }
  function readDrafts() {
    try { return JSON.parse(window.sessionStorage.getItem(DRAFTS) || "{}"); } catch (e) { return {}; }
  }
  function kept(field) {
    return field.name && !NOT_KEPT[field.name] && field.type !== "password" && field.type !== "file" &&
      field.type !== "submit" && field.type !== "button";
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.elements || form.closest(".sign-in")) { return; }
    var values = {};
    for (var i = 0; i < form.elements.length; i++) {
      var field = form.elements[i];
      if (!kept(field)) { continue; }
      values[field.name + "#" + i] = (field.type === "checkbox" || field.type === "radio") ? field.checked : field.value;
    }
    var drafts = {};
    drafts[formKey(form)] = values;  // only the latest submit: the one the session may have lost
    try { window.sessionStorage.setItem(DRAFTS, JSON.stringify(drafts)); } catch (e) { /* full: not kept */ }
  }, true);  // capture, after the confirmation above and before htmx takes the submit

  function restoreDrafts() {
    var notice = document.querySelector("[data-restore-drafts]");
    if (document.querySelector(".sign-in")) { return; }  // the way back: keep them
    var drafts = readDrafts();
    window.sessionStorage.removeItem(DRAFTS);
    if (!notice) { return; }
    var forms = document.querySelectorAll("form");
    for (var f = 0; f < forms.length; f++) {
      var values = drafts[formKey(forms[f])];
      if (!values) { continue; }
      var first = null;
      for (var i = 0; i < forms[f].elements.length; i++) {
        var field = forms[f].elements[i];
        var key = field.name + "#" + i;
        if (!kept(field) || !(key in values)) { continue; }
        if (field.type === "checkbox" || field.type === "radio") { field.checked = values[key]; } else { field.value = values[key]; }
        if (!first && field.type !== "hidden") { first = field; }
      }
      var details = forms[f].closest("details");
      if (details) { details.open = true; }
      notice.hidden = false;
      if (first) { first.focus(); }
      return;
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", restoreDrafts);
  } else {
    restoreDrafts();
  }

  // <button data-copy="#input"> copies that input's value (the one-time API token).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) { return; }
    var input = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[data-copy-status]");
    if (!input) { return; }
    function said(text) { if (status) { status.textContent = text; } }
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { said("Copied."); },
        function () { said("Copy failed: select the token and copy it by hand."); });
    } else {
      said(document.execCommand("copy") ? "Copied." : "Select the token and copy it by hand.");
    }
  });

  // Unticking Active on the product page asks first: the product stops being sold.
  document.addEventListener("submit", function (event) {
    var box = event.target.querySelector && event.target.querySelector("input[type=checkbox][data-confirm-untick]");
    if (box && box.defaultChecked && !box.checked && !window.confirm(box.getAttribute("data-confirm-untick"))) {
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
}());
