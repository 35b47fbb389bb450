// progenitor's page: draws the chart, remembers the decider's name, and reloads the page when
// a run moves (short polling of /api/fingerprint), unless the person is typing.
(function () {
  "use strict";
  var body = document.body;
  var seen = body.dataset.fingerprint;
  var typing = false;

  document.addEventListener("input", function () { typing = true; });

  var saved = window.localStorage ? localStorage.getItem("progenitor-name") : null;
  document.querySelectorAll("input[name=name]").forEach(function (input) {
    if (saved && !input.value) { input.value = saved; }
    input.addEventListener("change", function () { localStorage.setItem("progenitor-name", input.value); });
  });

  function drawChart() {
    var holder = document.getElementById("chart");
    var data = document.getElementById("chart-data");
    if (!holder || !data) { return; }
    if (!window.Plotly) { setTimeout(drawChart, 100); return; }
    var figure = JSON.parse(data.textContent);
    window.Plotly.newPlot(holder, figure.data, figure.layout, { displayModeBar: false, responsive: true });
  }
  drawChart();

  function poll() {
    fetch("/api/fingerprint", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.fingerprint !== seen) {
          var active = document.activeElement;
          var busy = typing || (active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
          if (!busy) { window.location.reload(); return; }
          document.getElementById("updated").hidden = false;
        }
        setTimeout(poll, 1500);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1500);
})();
