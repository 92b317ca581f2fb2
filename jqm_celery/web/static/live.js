// Live run progress: while the run is in flight, fetch its jobs fragment every second and swap it in.
(function () {
  "use strict";
  var box = document.getElementById("run-live");
  if (!box) { return; }
  function finished() {
    var progress = document.getElementById("run-progress");
    return progress && progress.dataset.finished === "true";
  }
  function tick() {
    if (finished()) { return; }
    fetch(box.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () { /* a missed poll is retried on the next tick */ })
      .then(function () { window.setTimeout(tick, 1000); });
  }
  window.setTimeout(tick, 1000);
})();
