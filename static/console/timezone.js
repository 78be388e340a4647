// Tells the server the browser's time zone (a cookie), so times show in the operator's zone
// unless they chose another on their settings page.
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) { return; }  // zone names need no encoding
  var prefix = "handoff_tz=";
  var current = document.cookie.split("; ").filter(function (c) { return c.indexOf(prefix) === 0; })[0];
  if (current && current.slice(prefix.length) === zone) { return; }
  document.cookie = prefix + zone + "; path=/; max-age=31536000; SameSite=Lax" +
    (location.protocol === "https:" ? "; Secure" : "");
})();
