// Pipewright console: refresh the page's main part every few seconds (the page says how
// often: data-refresh), without reloading.
// Pauses while a person types or has something open, so nothing they did is lost.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  var every = main ? Number(main.getAttribute("data-refresh")) : 0;
  if (!every) return;
  var last = null;
  var busy = false;
  var refreshes = 0;

  function occupied() {
    var a = document.activeElement;
    if (a && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return true;
    var fields = main.querySelectorAll("textarea, input[type=text]");
    for (var i = 0; i < fields.length; i++) if (fields[i].value) return true;
    return main.querySelector("details[open]:not(.log)") !== null;
  }

  function say(text, stale) {
    if (!live) return;
    live.textContent = text;
    live.className = stale ? "live stale" : "live";
  }

  function tick() {
    if (busy || document.hidden || occupied()) return;
    busy = true;
    fetch(location.href, { headers: { "X-Pipewright-Fragment": "main" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { say("signed out", true); clearInterval(timer); return null; }
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        if (html !== last) {
          last = html;
          main.innerHTML = html;
        }
        refreshes++;
        main.setAttribute("data-refreshes", String(refreshes));
        say("live", false);
      })
      .catch(function () { say("offline", true); })
      .then(function () { busy = false; });
  }

  // A notice or error from a form is shown once; the address keeps only the page.
  if (location.search.indexOf("notice=") >= 0 || location.search.indexOf("error=") >= 0) {
    var url = new URL(location.href);
    url.searchParams.delete("notice");
    url.searchParams.delete("error");
    history.replaceState(null, "", url.pathname + url.search);
  }
  var timer = setInterval(tick, every * 1000);
})();
