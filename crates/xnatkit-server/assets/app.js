// xnatkit web pages: the little behaviour that is not htmx's. Loaded as a
// file (the CSP allows no inline script): the form token on htmx
// requests, "/" to focus the filter, j/k to move through rows, x to tick
// the current row, d to submit the download form, and the all/none buttons
// of checkbox groups.
(function () {
  "use strict";
  function token() {
    var meta = document.querySelector('meta[name="xnatkit-csrf"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-XNATKIT-CSRF"] = token();
  });
  var current = -1;
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table[data-rows] tbody tr"));
  }
  function mark(list) {
    list.forEach(function (row, i) { row.classList.toggle("current", i === current); });
    if (list[current]) { list[current].scrollIntoView({ block: "nearest" }); }
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
    if (typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var list = rows();
    if (event.key === "/") {
      var filter = document.querySelector("[data-filter]");
      if (filter) { event.preventDefault(); filter.focus(); filter.select(); }
    } else if (event.key === "j" && list.length) {
      current = Math.min(current + 1, list.length - 1); mark(list);
    } else if (event.key === "k" && list.length) {
      current = Math.max(current - 1, 0); mark(list);
    } else if (event.key === "Enter" && list[current]) {
      var link = list[current].querySelector("a");
      if (link) { link.click(); }
    } else if (event.key === "x" && list[current]) {
      list[current].querySelectorAll('input[type="checkbox"]').forEach(function (box) { box.checked = !box.checked; });
    } else if (event.key === "d") {
      var form = document.querySelector("form[data-download]");
      if (form) { form.requestSubmit(); }
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-check]") : null;
    if (!button) { return; }
    var on = button.getAttribute("data-check") === "all";
    var scope = document.getElementById(button.getAttribute("data-scope")) || document;
    scope.querySelectorAll('input[type="checkbox"]').forEach(function (box) { box.checked = on; });
  });
})();
