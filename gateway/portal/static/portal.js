// The portal's scripts, served as a file: the Content-Security-Policy allows no inline script.
// Data reaches them as JSON in <script type="application/json"> blocks (rendered with |tojson), never as code.
(function () {
  'use strict';

  function jsonOf(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // The daily load curve: actual, forecast and the same day last week, TOU bands shaded.
  function dayCurve() {
    const target = document.getElementById('curve');
    const c = jsonOf('chart-data');
    if (!target || !c || typeof Plotly === 'undefined') {
      return;
    }
    // simplify: false draws every 15-min value (plotly would drop points on straight stretches).
    const traces = [
      {x: c.x, y: c.actual, name: c.labels.actual, mode: 'lines',
        line: {color: '#14345a', width: 2, simplify: false}},
      {x: c.x, y: c.forecast, name: c.labels.forecast, mode: 'lines',
        line: {color: '#e07b00', dash: 'dash', simplify: false}},
      {x: c.x, y: c.last_week, name: c.labels.last_week, mode: 'lines',
        line: {color: '#8a96a3', dash: 'dot', simplify: false}},
    ];
    const layout = {
      margin: {t: 20, r: 20}, shapes: c.shapes, hovermode: 'x unified',
      yaxis: {title: {text: 'kW'}, rangemode: 'tozero'}, xaxis: {type: 'date', rangeslider: {visible: true}},
      legend: {orientation: 'h'},
    };
    Plotly.newPlot(target, traces, layout, {responsive: true, displaylogo: false}).then(function () {
      target.dataset.ready = '1';
    });
  }

  function start() {
    dayCurve();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
