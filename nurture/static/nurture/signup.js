// Fills the sign-up form's time zone from the browser (a file, not an inline script: the Content
// Security Policy runs scripts from this origin only).
(function () { try { var tz = Intl.DateTimeFormat().resolvedOptions().timeZone; var f = document.getElementById("id_time_zone"); if (f && tz && !f.value) f.value = tz; } catch (e) {} })();
