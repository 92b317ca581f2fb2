// Recurrence forms show only the fields of the chosen kind; the server reads only those anyway.
(function () {
  "use strict";
  document.querySelectorAll("select[name=kind]").forEach(function (select) {
    var form = select.form;
    function show() {
      form.querySelectorAll("[data-kind]").forEach(function (group) {
        group.hidden = group.dataset.kind.split(" ").indexOf(select.value) < 0;
      });
    }
    select.addEventListener("change", show);
    show();
  });
})();

// The package card asks, after loading, whether a live worker consumes each queue of its entries.
(function () {
  "use strict";
  var box = document.getElementById("worker-check");
  if (!box) { return; }
  fetch(box.dataset.src, { credentials: "same-origin", headers: { "Accept": "text/html" } })
    .then(function (response) { return response.ok ? response.text() : ""; })
    .then(function (html) { box.innerHTML = html; })
    .catch(function () { /* the warning is advice; the card works without it */ });
})();
