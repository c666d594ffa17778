/* <script src="https://qa.example.org/static/embed.js" data-q="…" data-topic="…" async></script>
   Inserts the /embed widget in an iframe after this script tag and keeps the frame as tall as its content. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin = new URL(script.src, location.href).origin;
  var params = new URLSearchParams();
  ["q", "topic"].forEach(function (k) {
    var v = script.getAttribute("data-" + k);
    if (v) params.set(k, v);
  });
  var query = params.toString();
  var frame = document.createElement("iframe");
  frame.src = origin + "/embed" + (query ? "?" + query : "");
  frame.title = script.getAttribute("data-title") || "Ask the immunotherapy papers";
  frame.className = "qa-embed";
  frame.style.width = "100%";
  frame.style.border = "1px solid #d5dbe3";
  frame.style.borderRadius = "8px";
  frame.style.height = (parseInt(script.getAttribute("data-height"), 10) || 420) + "px";
  script.parentNode.insertBefore(frame, script.nextSibling);

  window.addEventListener("message", function (ev) {
    // only our widget, from our server, may resize the frame
    if (ev.origin !== origin || ev.source !== frame.contentWindow) return;
    var data = ev.data;
    if (!data || data.type !== "qa-embed:height") return;
    var height = Math.ceil(Number(data.height));
    if (height > 0 && isFinite(height)) frame.style.height = Math.min(height + 2, 10000) + "px";
  });
})();
