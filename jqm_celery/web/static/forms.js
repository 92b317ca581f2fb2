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
