// The patient viewer's keyboard: arrow keys and Page Up/Down move through the slices without reloading the page.
// Progressive enhancement only: without this script the links and the form of the page do the same.
(function () {
  "use strict";
  var figure = document.getElementById("slice");
  if (!figure) { return; }
  var image = document.getElementById("slice-image");
  var label = document.getElementById("slice-label");
  var input = document.getElementById("slice-number");
  var position = document.getElementById("slice-position");
  var count = parseInt(figure.getAttribute("data-count"), 10);
  var slice = parseInt(figure.getAttribute("data-slice"), 10);
  var labelText = label.textContent;
  var keys = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1, PageUp: 10, PageDown: -10 };

  function withSlice(url, wanted) {
    var parsed = new URL(url, window.location.href);
    parsed.searchParams.set("slice", String(wanted));
    return parsed.pathname + parsed.search;
  }

  function go(wanted) {
    wanted = Math.min(Math.max(wanted, 1), count);
    if (wanted === slice) { return; }
    var from = slice;
    slice = wanted;
    image.src = withSlice(image.getAttribute("src"), slice);
    image.alt = image.alt.replace(String(from), String(slice));
    labelText = labelText.replace(new RegExp("\\b" + from + "\\b"), String(slice));
    label.textContent = labelText;
    if (position) { position.textContent = ""; }  // the page gave the first slice's position only
    input.value = String(slice);
    figure.setAttribute("data-slice", String(slice));
    document.querySelectorAll("[data-step]").forEach(function (link) {
      var target = slice + parseInt(link.getAttribute("data-step"), 10);
      if (link.tagName === "A" && target >= 1 && target <= count) { link.href = withSlice(link.href, target); }
    });
    window.history.replaceState(null, "", withSlice(window.location.href, slice));
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    if (event.key === "Home") { go(1); event.preventDefault(); return; }
    if (event.key === "End") { go(count); event.preventDefault(); return; }
    if (keys[event.key]) { go(slice + keys[event.key]); event.preventDefault(); }
  });
}());
