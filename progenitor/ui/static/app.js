// progenitor's page: draws its charts, keeps Enter from deciding, and reloads the page when a
// run moves (short polling of /api/fingerprint), unless the person is typing.
(function () {
  "use strict";
  var body = document.body;
  var seen = body.dataset.fingerprint;
  var typing = false;

  document.addEventListener("input", function () { typing = true; });

  // Enter in a field of a decision form never submits it (the form's first, disabled button
  // already stops the browser's implicit submission; this covers a browser that does otherwise).
  document.querySelectorAll("form.decide, form.stack").forEach(function (form) {
    form.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key === "Enter" && target.tagName === "INPUT" && target.type !== "submit" && target.type !== "button"
          && form.id !== "login") {
        event.preventDefault();
      }
    });
  });

  function draw(holder, figure) {
    if (!window.Plotly) { setTimeout(function () { draw(holder, figure); }, 100); return; }
    window.Plotly.newPlot(holder, figure.data, figure.layout, { displayModeBar: false, responsive: true });
  }
  document.querySelectorAll("script.figure").forEach(function (data) {
    var holder = document.getElementById(data.dataset.for);
    if (holder) { draw(holder, JSON.parse(data.textContent)); }
  });

  function poll() {
    if (!seen) { return; }
    fetch("/api/fingerprint", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.fingerprint !== seen) {
          var active = document.activeElement;
          var busy = typing || (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) || document.getElementById("confirm");
          if (!busy) { window.location.reload(); return; }
          document.getElementById("updated").hidden = false;
        }
        setTimeout(poll, 1500);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1500);
})();
