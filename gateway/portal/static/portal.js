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
    // Hover labels are made on the server (gateway/portal/units.py): each value with its unit and precision.
    const h = c.hover || {};
    const traces = [
      {x: c.x, y: c.actual, name: c.labels.actual, mode: c.actual_marker ? 'lines+markers' : 'lines',
        connectgaps: false, legendrank: 1, line: {color: '#14345a', width: 2, simplify: false},
        marker: {color: '#14345a', size: c.actual_marker || 0}, customdata: h.actual, hovertemplate: h.template},
      {x: c.x, y: c.forecast, name: c.labels.forecast, mode: 'lines', legendrank: 3,
        line: {color: '#e07b00', dash: 'dash', simplify: false}, customdata: h.forecast, hovertemplate: h.template},
      {x: c.x, y: c.last_week, name: c.labels.last_week, mode: 'lines', legendrank: 4,
        line: {color: '#8a96a3', dash: 'dot', simplify: false}, customdata: h.last_week, hovertemplate: h.template},
    ];
    if (c.estimated) {
      // Estimated values: markers and a label of their own. A second, silent trace carries the dotted line from the
      // measured neighbours across the estimated run, so the curve reads on without either neighbour hovering twice.
      traces.push({x: c.x, y: c.estimated, name: c.labels.estimated, mode: 'lines+markers', connectgaps: false,
        legendrank: 2, legendgroup: 'estimated', line: {color: '#14345a', width: 2, dash: 'dot', simplify: false},
        marker: {symbol: 'circle-open', size: 8, color: '#c26a00', line: {width: 2}}, customdata: h.actual,
        hovertemplate: h.template});
      traces.push({x: c.x, y: c.estimated_link, name: c.labels.estimated, mode: 'lines', connectgaps: false,
        legendgroup: 'estimated', showlegend: false, hoverinfo: 'skip',
        line: {color: '#14345a', width: 2, dash: 'dot', simplify: false}});
    }
    const layout = {
      margin: {t: 20, r: 20}, shapes: c.shapes, hovermode: 'x unified',
      yaxis: {title: {text: 'kW'}, rangemode: 'tozero', tickformat: ',~r'},
      xaxis: Object.assign({type: 'date', rangeslider: {visible: true}}, c.xaxis || {}),
      legend: {orientation: 'h'},
    };
    Plotly.newPlot(target, traces, layout, {responsive: true, displaylogo: false}).then(function () {
      target.dataset.ready = '1';
    });
  }

  // A chart built whole on the server (gateway/portal/charts.py: traces and layout), drawn as given: the month's
  // days, and the week, month and year ranges.
  function figure(targetId, dataId) {
    const target = document.getElementById(targetId);
    const f = jsonOf(dataId);
    if (!target || !f || typeof Plotly === 'undefined') {
      return;
    }
    Plotly.newPlot(target, f.traces, f.layout, {responsive: true, displaylogo: false}).then(function () {
      target.dataset.ready = '1';
    });
  }

  // kW now: the table is rewritten from live.json every few seconds (same origin, the session cookie; text only).
  function setRow(tr, s) {
    tr.className = 'live-' + s.status;
    tr.querySelector('.kw').textContent = s.kw_text;
    tr.querySelector('.age').textContent = s.age_text;
    tr.querySelector('.status').textContent = s.status_text;
    tr.querySelector('.today').firstChild.textContent = s.today_kwh_text + ' ';
    tr.querySelector('.today .note').textContent = s.today_note;
  }

  function live() {
    const table = document.getElementById('live');
    if (!table) {
      return;
    }
    const every = 1000 * (parseInt(table.dataset.refresh, 10) || 10);
    const failed = document.getElementById('live-failed');
    let polls = 0;
    function poll() {
      fetch(table.dataset.url, {credentials: 'same-origin', cache: 'no-store', redirect: 'manual',
        headers: {Accept: 'application/json'}})
        .then(function (r) {
          if (!r.ok) {
            throw new Error('status ' + r.status);
          }
          return r.json();
        })
        .then(function (data) {
          data.sites.forEach(function (s) {
            table.querySelectorAll('tr[data-site]').forEach(function (tr) {
              if (tr.dataset.site === s.site) {
                setRow(tr, s);
              }
            });
          });
          polls += 1;
          table.dataset.polls = String(polls);
          table.dataset.at = data.at;
          failed.hidden = true;
        })
        .catch(function () {
          failed.hidden = false;
        })
        .finally(function () {
          window.setTimeout(poll, every);
        });
    }
    window.setTimeout(poll, every);
  }

  function start() {
    dayCurve();
    figure('daily-chart', 'daily-chart-data');
    figure('range-chart', 'range-chart-data');
    live();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();

// Energy-accounting pages (gateway/portal/energy_pages.py): server-built figures, drawn as given.
(function () {
  'use strict';
  function draw() {
    ['costs-chart', 'sec-chart', 'cusum-chart'].forEach(function (id) {
      const target = document.getElementById(id);
      const data = document.getElementById(id + '-data');
      if (!target || !data || typeof Plotly === 'undefined') {
        return;
      }
      const f = JSON.parse(data.textContent);
      Plotly.newPlot(target, f.traces, f.layout, {responsive: true, displaylogo: false}).then(function () {
        target.dataset.ready = '1';
      });
    });
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', draw);
  } else {
    draw();
  }
})();
