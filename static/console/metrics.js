// Draws the metrics page's charts from the JSON the server put in #metrics-data.
// Loaded as a static file with the CSP nonce: no inline script, no inline style.
(function () {
  "use strict";
  var source = document.getElementById("metrics-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var blue = "#2451b7", green = "#127a46", amber = "#9a5b00", purple = "#6b3fa0", red = "#b42318", grey = "#98a2b3";
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;

  // Long labels ("card dispute / classify / low confidence") are wrapped onto several lines
  // rather than clipped at the chart's edge; Chart.js draws an array label one line per item.
  function wrap(label, width) {
    var words = String(label).split(" "), lines = [], line = "";
    words.forEach(function (word) {
      if (line && (line + " " + word).length > width) { lines.push(line); line = word; }
      else { line = line ? line + " " + word : word; }
    });
    if (line) { lines.push(line); }
    return lines.length > 1 ? lines : String(label);
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return null; }
    var horizontal = config.options && config.options.indexAxis === "y";
    var narrow = canvas.parentNode.clientWidth < 520;
    var labels = (config.data.labels || []).map(function (label) {
      return wrap(label, horizontal ? (narrow ? 16 : 26) : 12);
    });
    config.data.labels = labels;
    if (horizontal) {
      // Every label gets its own rows instead of some being skipped or cut.
      var rows = labels.reduce(function (n, label) { return n + (Array.isArray(label) ? label.length : 1); }, 0);
      canvas.parentNode.style.height = Math.max(280, rows * 16 + labels.length * 14 + 60) + "px";
    }
    var chart = new Chart(canvas, config);
    canvas.dataset.rendered = "true";
    return chart;
  }

  draw("chart-trend", {
    data: {
      labels: data.trend.labels,
      datasets: [
        { type: "bar", label: "Journeys", data: data.trend.journeys, backgroundColor: "#dfe6f5", yAxisID: "count", order: 2 },
        { type: "line", label: "Containment %", data: data.trend.containment, borderColor: green, backgroundColor: green, yAxisID: "pct", spanGaps: true, order: 1 },
        { type: "line", label: "Escalation %", data: data.trend.escalation, borderColor: amber, backgroundColor: amber, yAxisID: "pct", spanGaps: true, order: 1 },
        { type: "line", label: "Takeover %", data: data.trend.takeover, borderColor: purple, backgroundColor: purple, yAxisID: "pct", spanGaps: true, order: 1 }
      ]
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        count: { position: "left", beginAtZero: true, title: { display: true, text: "journeys" }, ticks: { precision: 0 } },
        pct: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false }, title: { display: true, text: "%" } }
      }
    }
  });

  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: data.funnel.labels,
      datasets: [
        { label: "Reached the step", data: data.funnel.reached, backgroundColor: blue, maxBarThickness: 28 },
        { label: "Abandoned here", data: data.funnel.abandoned, backgroundColor: red, maxBarThickness: 28 }
      ]
    },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { ticks: { autoSkip: false } } } }
  });

  var groupsCanvas = document.getElementById("chart-groups");
  draw("chart-groups", {
    type: "bar",
    data: { labels: data.groups.labels, datasets: [{ label: "Cases", data: data.groups.counts, backgroundColor: amber, maxBarThickness: 34 }] },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { ticks: { autoSkip: false } } },
      onClick: function (event, elements) {
        if (!elements.length || !groupsCanvas) { return; }
        var id = data.groups.ids[elements[0].index];
        window.location.href = groupsCanvas.dataset.groupUrl + id + "/";
      }
    }
  });

  draw("chart-compare", {
    type: "bar",
    data: {
      labels: data.compare.labels,
      datasets: [
        { label: data.compare.current_label, data: data.compare.current, backgroundColor: blue },
        { label: data.compare.previous_label, data: data.compare.previous, backgroundColor: grey }
      ]
    },
    options: { scales: { y: { beginAtZero: true, max: 100 } } }
  });
})();
