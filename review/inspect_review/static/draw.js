// Drawing on the item page's image (used by item.js): a polygon (a click, or Space at the
// cross, adds a corner; Enter or a double-click closes it; Backspace takes the last corner
// back; Esc cancels) and a brush (press and drag, or Space to put it down and lift it while
// the arrows move the cross; [ and ] change its width). Points are in the recorded image's
// pixels: the SVG's viewBox is the image's size, whatever size the page shows it at.
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var WIDTHS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function round1(v) { return Math.round(v * 10) / 10; }

  function area(points) {
    var s = 0;
    for (var i = 0; i < points.length; i++) {
      var a = points[i], b = points[(i + 1) % points.length];
      s += a[0] * b[1] - b[0] * a[1];
    }
    return Math.abs(s) / 2;
  }

  function pointsAttr(points) {
    return points.map(function (p) { return p[0] + ',' + p[1]; }).join(' ');
  }

  // svg: the layer over the image; data: the page's draw data (width, height, bounds);
  // hooks: done(mark) when a mark is finished, say(text) for the status line, select(k) when
  // a drawn mark is clicked, changed() when the tool or the brush width changes
  function create(svg, data, hooks) {
    var W = data.width, H = data.height;
    var limits = data.max_points || {polygon: 400, stroke: 1000};
    var layer = el('g', {'class': 'drawn'}, svg);
    var live = el('g', {'class': 'live'}, svg);
    var state = {tool: null, replaces: null, points: [], down: false};
    var cross = [round1(W / 2), round1(H / 2)];
    var guess = Math.max(1, Math.round(Math.min(W, H) / 60));
    var width = WIDTHS.filter(function (w) { return w <= guess; }).pop() || 1;
    var step = Math.max(1, Math.round(Math.max(W, H) / 200));

    function clamp(p) {
      return [round1(Math.max(0, Math.min(W, p[0]))), round1(Math.max(0, Math.min(H, p[1])))];
    }

    function fromEvent(e) {
      var r = svg.getBoundingClientRect();
      return clamp([(e.clientX - r.left) / r.width * W, (e.clientY - r.top) / r.height * H]);
    }

    function renderLive() {
      while (live.firstChild) { live.removeChild(live.firstChild); }
      if (!state.tool) { return; }
      var thin = {'vector-effect': 'non-scaling-stroke'};
      el('line', Object.assign({x1: 0, y1: cross[1], x2: W, y2: cross[1], 'class': 'cross'}, thin), live);
      el('line', Object.assign({x1: cross[0], y1: 0, x2: cross[0], y2: H, 'class': 'cross'}, thin), live);
      var pts = state.points;
      if (state.tool === 'stroke') {
        el('circle', {cx: cross[0], cy: cross[1], r: width / 2, 'class': 'nib'}, live);
        if (pts.length) {
          el('polyline', {points: pointsAttr(pts), 'stroke-width': width, 'class': 'ink'}, live);
        }
        return;
      }
      if (pts.length) {
        el('polyline', Object.assign({points: pointsAttr(pts.concat([cross])), 'class': 'edge'}, thin), live);
        pts.forEach(function (p) {
          el('circle', {cx: p[0], cy: p[1], r: Math.max(W, H) / 150, 'class': 'corner'}, live);
        });
      }
    }

    function say(text) { hooks.say(text); }

    function describe() {
      if (!state.tool) { return 'Not drawing.'; }
      var what = state.tool === 'polygon' ? 'Polygon' : 'Brush (' + width + ' px)';
      var why = state.replaces !== null ? ' redrawing region ' + hooks.regionNumber(state.replaces) : '';
      var how = state.tool === 'polygon'
        ? ': click or Space adds a corner (' + state.points.length + ' so far), Enter closes, Esc cancels'
        : ': drag, or Space down and up; Enter ends the stroke, Esc leaves the brush';
      return what + why + how + '.';
    }

    // a tool, from the start: the cross at the middle of the image (where keys move it from)
    function start(tool, replaces) {
      if (replaces !== undefined) { state.replaces = replaces; }
      cross = [round1(W / 2), round1(H / 2)];
      state.tool = tool;
      state.points = [];
      state.down = false;
      svg.classList.add('drawing');
      renderLive();
      say(describe());
      hooks.changed();
    }

    function stop(text) {
      state.tool = null;
      state.replaces = null;
      state.points = [];
      state.down = false;
      svg.classList.remove('drawing');
      renderLive();
      say(text || describe());
      hooks.changed();
    }

    function add(p) {
      var pts = state.points;
      var last = pts[pts.length - 1];
      var gap = state.tool === 'stroke' ? Math.max(0.5, width / 4) : 0.5;
      if (last && Math.hypot(p[0] - last[0], p[1] - last[1]) < gap) { return; }
      if (pts.length >= limits[state.tool]) {
        if (state.tool === 'stroke') { finish(); }
        say('That is the most points one mark takes (' + limits[state.tool] + '): close it and draw another.');
        return;
      }
      pts.push(p);
      renderLive();
      if (state.tool === 'polygon') { say(describe()); }
    }

    function finish() {
      var pts = state.points;
      if (state.tool === 'polygon') {
        if (pts.length < 3) {
          say('A polygon needs three corners or more: add them, then Enter (Esc cancels).');
          return;
        }
        if (area(pts) < 1) {
          say('These corners lie on one line and enclose nothing: move one, or use the brush (B).');
          return;
        }
      } else if (!pts.length) {
        return;
      }
      var mark = {kind: state.tool, points: pts.slice(), replaces: state.replaces};
      if (state.tool === 'stroke') { mark.width = width; }
      var again = state.tool === 'stroke' && state.replaces === null;  // the brush stays on
      state.points = [];
      state.down = false;
      if (again) { renderLive(); } else { stop('Drawn.'); }
      hooks.done(mark);
    }

    function move(dx, dy) {
      cross = clamp([cross[0] + dx, cross[1] + dy]);
      if (state.tool === 'stroke' && state.down) { add(cross.slice()); }
      renderLive();
    }

    function setWidth(delta) {
      var i = WIDTHS.indexOf(width);
      width = WIDTHS[Math.max(0, Math.min(WIDTHS.length - 1, i + delta))];
      renderLive();
      if (state.tool) { say(describe()); }
      hooks.changed();
    }

    // a key while drawing: true when it was the tool's
    function key(e) {
      var k = e.key, by = e.shiftKey ? step * 10 : step;
      var moves = {arrowleft: [-by, 0], arrowright: [by, 0], arrowup: [0, -by], arrowdown: [0, by]};
      var lower = k.toLowerCase();
      if (moves[lower]) { move(moves[lower][0], moves[lower][1]); return true; }
      if (k === 'Escape') { stop('Cancelled: nothing drawn.'); return true; }
      if (k === 'Enter') { finish(); return true; }
      if (k === 'Backspace') {
        if (state.tool === 'polygon' && state.points.length) {
          state.points.pop();
          renderLive();
          say(describe());
        }
        return true;
      }
      if (k === ' ') {
        if (state.tool === 'polygon') {
          add(cross.slice());
        } else if (state.down) {
          finish();
        } else {
          state.down = true;
          state.points = [];
          add(cross.slice());
        }
        return true;
      }
      return false;
    }

    svg.addEventListener('pointerdown', function (e) {
      if (!state.tool || e.button !== 0) { return; }
      e.preventDefault();
      cross = fromEvent(e);
      if (state.tool === 'polygon') {
        add(cross.slice());
        return;
      }
      state.down = true;
      state.points = [];
      svg.setPointerCapture(e.pointerId);
      add(cross.slice());
    });
    svg.addEventListener('pointermove', function (e) {
      if (!state.tool) { return; }
      cross = fromEvent(e);
      if (state.tool === 'stroke' && state.down) { add(cross.slice()); } else { renderLive(); }
    });
    svg.addEventListener('pointerup', function () {
      if (state.tool === 'stroke' && state.down) { finish(); }
    });
    svg.addEventListener('dblclick', function (e) {
      if (state.tool === 'polygon') { e.preventDefault(); finish(); }
    });

    // the marks drawn so far; ``selected``: the index of the chosen one (-1: none)
    function render(marks, selected) {
      while (layer.firstChild) { layer.removeChild(layer.firstChild); }
      marks.forEach(function (m, k) {
        var g = el('g', {'class': 'mark' + (k === selected ? ' selected' : ''),
          'data-k': String(k), 'data-choice': m.choice || 'none'}, layer);
        if (m.kind === 'polygon') {
          el('polygon', {points: pointsAttr(m.points)}, g);
        } else {
          el('polyline', {points: pointsAttr(m.points), 'stroke-width': m.width}, g);
        }
        var label = el('text', {x: m.points[0][0], y: m.points[0][1], 'font-size': Math.max(W, H) / 24}, g);
        label.textContent = 'D' + (k + 1);
        g.addEventListener('click', function () { if (!state.tool) { hooks.select(k); } });
      });
    }

    return {
      start: start,
      stop: stop,
      key: key,
      render: render,
      setWidth: setWidth,
      active: function () { return state.tool; },
      width: function () { return width; },
      area: area
    };
  }

  window.InspectDraw = {create: create};
}());
