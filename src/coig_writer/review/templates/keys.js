// Keyboard shortcuts for the review form (optional: every page works without this script).
// a accept, r reject, e accept with edits, s send back, Ctrl+Enter save, n next item, q queue.
(function () {
  var map = {a: "d-accept", r: "d-reject", e: "d-edit", s: "d-send_back"};
  document.addEventListener("keydown", function (ev) {
    var el = ev.target, tag = el && el.tagName;
    var typing = tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (el && el.isContentEditable);
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      var form = document.getElementById("decide");
      if (form) { ev.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var id = map[ev.key];
    if (id && document.getElementById(id)) {
      ev.preventDefault();
      document.getElementById(id).checked = true;
      var focus = {"d-reject": "reason", "d-send_back": "reason", "d-edit": "e-query"}[id];
      if (focus === "e-query") document.getElementById("edit-box").open = true;
      if (focus) document.getElementById(focus).focus();
    } else if (ev.key === "n") { window.location.href = "/review"; }
    else if (ev.key === "q") { window.location.href = "/queue"; }
  });
})();

// A form over the server's body limit is stopped here, so the typed text stays on the page.
(function () {
  document.addEventListener("submit", function (ev) {
    var form = ev.target, limit = parseInt(form.getAttribute("data-max-body") || "0", 10);
    if (!limit) return;
    var size = new Blob([new URLSearchParams(new FormData(form)).toString()]).size;
    if (size > limit) {
      ev.preventDefault();
      var p = document.getElementById("size-notice") || document.createElement("p");
      p.id = "size-notice"; p.className = "notice";
      p.textContent = "Not sent: this form is " + Math.ceil(size / 1048576) + " MiB, over the " +
        Math.floor(limit / 1048576) + " MiB limit. Shorten the text (it is kept here) and save again.";
      form.insertBefore(p, form.firstChild);
    }
  });
})();
