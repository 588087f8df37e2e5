// The portal's scripts, served as a file: the Content-Security-Policy allows no inline script.
// Data reaches them as JSON in <script type="application/json"> blocks (rendered with |tojson), never as code.
(function () {
  'use strict';

  function jsonOf(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // The daily load curve: actual, forecast and the same day last week, TOU bands shaded. The actual line holds
  // measured intervals only; estimated ones are a trace of their own (dotted, hollow markers); missing ones stay
  // gaps (connectgaps: false, never filled) and pending ones (not yet reached) are not drawn: the page greys them.
  function dayCurve() {
    const target = document.getElementById('curve');
    const c = jsonOf('chart-data');
    if (!target || !c || typeof Plotly === 'undefined') {
      return;
    }
    // simplify: false draws every 15-min value (plotly would drop points on straight stretches).
    const traces = [
      {x: c.x, y: c.actual, name: c.labels.actual, mode: c.actual_marker ? 'lines+markers' : 'lines',
        connectgaps: false, legendrank: 1, line: {color: '#14345a', width: 2, simplify: false},
        marker: {color: '#14345a', size: c.actual_marker || 0}},
      {x: c.x, y: c.forecast, name: c.labels.forecast, mode: 'lines', legendrank: 3,
        line: {color: '#e07b00', dash: 'dash', simplify: false}},
      {x: c.x, y: c.last_week, name: c.labels.last_week, mode: 'lines', legendrank: 4,
        line: {color: '#8a96a3', dash: 'dot', simplify: false}},
    ];
    if (c.estimated) {
      // Estimated values: markers and a label of their own. A second, silent trace carries the dotted line from the
      // measured neighbours across the estimated run, so the curve reads on without either neighbour hovering twice.
      traces.push({x: c.x, y: c.estimated, name: c.labels.estimated, mode: 'lines+markers', connectgaps: false,
        legendrank: 2, legendgroup: 'estimated', line: {color: '#14345a', width: 2, dash: 'dot', simplify: false},
        marker: {symbol: 'circle-open', size: 8, color: '#c26a00', line: {width: 2}}});
      traces.push({x: c.x, y: c.estimated_link, name: c.labels.estimated, mode: 'lines', connectgaps: false,
        legendgroup: 'estimated', showlegend: false, hoverinfo: 'skip',
        line: {color: '#14345a', width: 2, dash: 'dot', simplify: false}});
    }
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
