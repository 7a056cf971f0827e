// xnatkit web pages: the little behaviour that is not htmx's. Loaded as a
// file (the CSP allows no inline script): the form token on htmx
// requests, "/" to focus the filter, j/k to move through rows, x to tick
// the current row, d to submit the download form, the all/none buttons
// of checkbox groups, and the auto-logout warning XNAT users know: two
// minutes before an idle session ends, a banner offers to keep it.
(function () {
  "use strict";
  function token() {
    var meta = document.querySelector('meta[name="xnatkit-csrf"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-XNATKIT-CSRF"] = token();
  });
  // Auto-logout warning. Any request renews the session on the server, so
  // the clock restarts on each page and each htmx request.
  var timeoutMeta = document.querySelector('meta[name="xnatkit-session-timeout"]');
  var timeoutMs = timeoutMeta ? parseInt(timeoutMeta.getAttribute("content"), 10) * 1000 : 0;
  var warnTimer = null, endTimer = null;
  function banner() {
    var box = document.getElementById("session-warning");
    if (!box) {
      box = document.createElement("div");
      box.id = "session-warning";
      box.setAttribute("role", "alert");
      box.className = "session-warning";
      document.body.insertBefore(box, document.body.firstChild);
    }
    box.textContent = "";
    return box;
  }
  function hideBanner() {
    var box = document.getElementById("session-warning");
    if (box) { box.remove(); }
  }
  function armSessionClock() {
    if (!timeoutMs) { return; }
    clearTimeout(warnTimer); clearTimeout(endTimer);
    var lead = Math.min(120000, timeoutMs / 4);
    warnTimer = setTimeout(function () {
      var box = banner();
      box.appendChild(document.createTextNode("Your session ends in " + Math.round(lead / 60000) + " minute(s) without activity. "));
      var keep = document.createElement("button");
      keep.type = "button";
      keep.textContent = "Stay logged in";
      keep.addEventListener("click", function () {
        fetch("/data/JSESSION", { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
          .then(function (response) { if (response.ok) { hideBanner(); armSessionClock(); } });
      });
      box.appendChild(keep);
    }, timeoutMs - lead);
    endTimer = setTimeout(function () {
      var box = banner();
      box.appendChild(document.createTextNode("Your session has ended. "));
      var link = document.createElement("a");
      link.href = "/app/login?next=" + encodeURIComponent(location.pathname + location.search);
      link.textContent = "Log in again";
      box.appendChild(link);
    }, timeoutMs);
  }
  armSessionClock();
  document.addEventListener("htmx:afterRequest", armSessionClock);
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
// Upload page: send the form with XHR so the upload shows its progress;
// the form token goes in the header, as on htmx requests.
(function () {
  "use strict";
  var form = document.querySelector("form[data-upload]");
  if (!form) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var bar = document.getElementById("upload-progress");
    var percent = document.getElementById("upload-percent");
    var result = document.getElementById("upload-result");
    var button = document.getElementById("upload-button");
    var meta = document.querySelector('meta[name="xnatkit-csrf"]');
    result.textContent = "";
    bar.hidden = false; bar.value = 0; button.disabled = true;
    var xhr = new XMLHttpRequest();
    // Fields named in data-query go in the URL: the server needs them
    // before it reads the files.
    var target = form.getAttribute("action");
    (form.getAttribute("data-query") || "").split(" ").filter(Boolean).forEach(function (name) {
      var field = form.elements[name];
      if (field) {
        target += (target.indexOf("?") < 0 ? "?" : "&") + encodeURIComponent(name) + "=" + encodeURIComponent(field.value);
      }
    });
    xhr.open("POST", target);
    xhr.setRequestHeader("X-XNATKIT-CSRF", meta ? meta.getAttribute("content") : "");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        percent.textContent = bar.value + " %";
      }
    });
    xhr.addEventListener("load", function () {
      button.disabled = false;
      if (xhr.status === 200) {
        bar.value = 100; percent.textContent = "done";
        var answer = JSON.parse(xhr.responseText);
        var list = document.createElement("ul");
        list.id = "upload-sessions";
        answer.uris.forEach(function (uri, i) {
          var item = document.createElement("li");
          var link = document.createElement("a");
          link.href = answer.links[i];
          link.textContent = uri;
          item.appendChild(link);
          list.appendChild(item);
        });
        result.appendChild(document.createTextNode("Uploaded: "));
        result.appendChild(list);
      } else {
        percent.textContent = "failed";
        var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var main = doc.querySelector("main");
        result.textContent = "Upload refused (" + xhr.status + "): " + ((main ? main.textContent : xhr.responseText) || "").trim();
      }
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      percent.textContent = "failed";
      result.textContent = "The upload did not reach the server; check the connection and try again.";
    });
    xhr.send(new FormData(form));
  });
})();
