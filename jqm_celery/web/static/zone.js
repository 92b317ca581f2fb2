// Sign-in sends the browser's time zone: the web UI shows times in it until the user picks one.
(function () {
  "use strict";
  var field = document.getElementById("f-browser_tz");
  if (field && window.Intl) { field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; }
})();
