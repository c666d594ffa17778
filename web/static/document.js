/* Document view: a #p-<passage id> link highlights that passage (merged passages are looked up through
   /api/passages) and scrolls to the marked sentence when the link carries ?hl=. */
(function () {
  "use strict";
  var outline = document.querySelector(".outline details");
  if (outline && window.matchMedia && window.matchMedia("(max-width: 760px)").matches) outline.open = false;

  function highlight(start, end) {
    var first = null;
    document.querySelectorAll(".document .seg").forEach(function (seg) {
      var s = Number(seg.getAttribute("data-s")), e = Number(seg.getAttribute("data-e"));
      var inside = s >= start && e <= end;
      seg.classList.toggle("in-passage", inside);
      if (inside && !first) first = seg;
    });
    return first;
  }

  function reveal(target) {
    var mark = document.getElementById("hl");
    var node = mark || target;
    if (node) node.scrollIntoView({ block: mark ? "center" : "start" });
  }

  function fromHash() {
    var hash = decodeURIComponent(location.hash.slice(1));
    if (hash.indexOf("p-") !== 0) { reveal(null); return; }
    var anchor = document.getElementById(hash);
    if (anchor) {
      reveal(highlight(Number(anchor.getAttribute("data-start")), Number(anchor.getAttribute("data-end"))));
      return;
    }
    fetch("/api/passages/" + encodeURIComponent(hash.slice(2)), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) { if (p) reveal(highlight(p.start, p.end)); });
  }

  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
