// The item page from the keyboard: P pass, F fail, N next, Q queue; arrows or J/K choose a
// row (a region, or a mark you drew: D1, D2, ...), X not a defect, C confirm, U unsure, A as
// the verdict says, digits pick a class and T types a class name; D draws a polygon, B the
// brush, R redraws the chosen region's outline, [ and ] change the brush width, Del removes a
// drawn mark; E writes a note (Esc leaves it), O hides the outlines, Z undoes the decision just
// saved. The marks go with the decision (the form's "marks" field). Without JavaScript the form
// works too, without drawing. A page the browser brings back from its history (Back) is loaded
// anew: it shows the item's decision as it stands now, never the choices it was left with.
(function () {
  'use strict';
  window.addEventListener('pageshow', function (e) {
    if (e.persisted) { window.location.reload(); }  // from the back-forward cache: stale
  });
  var body = document.body;
  var form = document.getElementById('decision');
  var tbody = document.querySelector('#regions tbody');
  var regionRows = Array.prototype.slice.call(document.querySelectorAll('#regions tr.region'));
  // the choices the server rendered (the decision in force), not those a browser restores
  regionRows.forEach(function (r) {
    var sel = r.querySelector('select');
    var given = Array.prototype.filter.call(sel.options, function (o) { return o.defaultSelected; })[0];
    sel.value = given ? given.value : 'auto';
  });
  var regionShapes = Array.prototype.slice.call(document.querySelectorAll('#shapes .shape'));
  var data = JSON.parse(document.getElementById('tools').dataset.draw);
  var names = data.names.slice();  // the classes digits 1-9 pick
  var marks = data.marks.map(function (m) {
    return {kind: m.kind, points: m.points, width: m.width, choice: m.choice, replaces: m.replaces};
  });
  var status = document.getElementById('draw-status');
  var nameInput = document.getElementById('class-name');
  var selected = -1;
  var sent = false;

  function say(text) { status.textContent = text; }

  var picture = window.InspectPicture.setup(data);
  var draw = window.InspectDraw.create(document.getElementById('marks'), data, {
    say: say,
    done: function (mark) {
      mark.choice = defaultChoice(mark.replaces);
      marks.push(mark);
      render();
      select(regionRows.length + marks.length - 1);
      if (!mark.choice) { say('Drawn as D' + marks.length + ': give it a class (1-9, or T to type a name).'); }
    },
    select: function (k) { select(regionRows.length + k); },
    changed: showTools,
    regionNumber: regionNumber
  });

  // the tool buttons and the brush width as they are
  function showTools() {
    document.getElementById('brush-width').textContent = String(draw.width());
    ['polygon', 'stroke'].forEach(function (t) {
      document.getElementById('tool-' + t).classList.toggle('on', draw.active() === t);
    });
  }

  function regionNumber(id) {
    var row = regionRows.filter(function (r) { return +r.dataset.id === id; })[0];
    return row ? row.dataset.n : '?';
  }

  // a new mark's class: a redrawn region keeps its class; a new one takes the last drawn one's
  function defaultChoice(replaces) {
    if (replaces !== null) {
      var row = regionRows.filter(function (r) { return +r.dataset.id === replaces; })[0];
      var value = row.querySelector('select').value;
      return value.indexOf('class:') === 0 ? value : 'class:' + row.dataset.cls;
    }
    for (var k = marks.length - 1; k >= 0; k--) {
      if (marks[k].choice && marks[k].replaces === null) { return marks[k].choice; }
    }
    return '';
  }

  function replacing(id) {
    for (var k = 0; k < marks.length; k++) { if (marks[k].replaces === id) { return k; } }
    return -1;
  }

  function choiceText(choice) {
    if (choice === 'not_defect') { return 'not a defect'; }
    if (choice === 'unsure') { return 'unsure'; }
    return choice ? choice.slice(6) : '';
  }

  function markRow(m, k) {
    var tr = document.createElement('tr');
    tr.className = 'region drawn' + (m.choice ? ' changed' : ' unset');
    tr.dataset.mark = String(k);
    var cells = [
      'D' + (k + 1),
      m.kind === 'polygon' ? 'drawn polygon' : 'brush ' + m.width + ' px',
      m.kind === 'polygon' ? Math.round(draw.area(m.points)).toLocaleString('en') : '-',
      '-', '-', '-'
    ];
    if (m.replaces !== null) { cells[1] += ', redraws ' + regionNumber(m.replaces); }
    cells.forEach(function (text, i) {
      var td = document.createElement('td');
      td.textContent = text;
      if (i >= 2) { td.className = 'num'; }
      tr.appendChild(td);
    });
    var td = document.createElement('td');
    var sel = document.createElement('select');
    sel.setAttribute('aria-label', 'class of drawn mark D' + (k + 1));
    var options = [['', '- choose a class -']].concat(
      names.map(function (n, i) { return ['class:' + n, (i < 9 ? (i + 1) + ': ' : '') + n]; }),
      [['not_defect', 'not a defect'], ['unsure', 'unsure']]);
    if (m.choice && !options.some(function (o) { return o[0] === m.choice; })) {
      options.push([m.choice, choiceText(m.choice)]);
    }
    options.forEach(function (o) {
      var opt = document.createElement('option');
      opt.value = o[0];
      opt.textContent = o[1];
      sel.appendChild(opt);
    });
    sel.value = m.choice || '';
    sel.addEventListener('change', function () {
      select(regionRows.length + k);
      setMarkChoice(k, sel.value);
    });
    td.appendChild(sel);
    tr.appendChild(td);
    tr.addEventListener('click', function () { select(regionRows.length + k); });
    return tr;
  }

  function render() {
    Array.prototype.slice.call(tbody.querySelectorAll('tr.drawn')).forEach(function (tr) {
      tbody.removeChild(tr);
    });
    var empty = tbody.querySelector('td[colspan]');
    if (empty) { empty.parentNode.style.display = marks.length ? 'none' : ''; }
    marks.forEach(function (m, k) { tbody.appendChild(markRow(m, k)); });
    regionRows.forEach(function (r, j) {
      var k = replacing(+r.dataset.id);
      r.classList.toggle('redrawn', k >= 0);
      r.querySelector('select').disabled = k >= 0;
      regionShapes[j].classList.toggle('redrawn', k >= 0);
      r.title = k >= 0 ? 'outline redrawn as D' + (k + 1) : '';
    });
    draw.render(marks, selected - regionRows.length);
    picture.labels();
    highlight();
  }


  function rowCount() { return regionRows.length + marks.length; }

  function highlight() {
    var rows = Array.prototype.slice.call(tbody.querySelectorAll('tr.region'));
    rows.forEach(function (r, j) { r.classList.toggle('selected', j === selected); });
    regionShapes.forEach(function (s, j) { s.classList.toggle('selected', j === selected); });
    Array.prototype.slice.call(document.querySelectorAll('#marks .mark')).forEach(function (g, k) {
      g.classList.toggle('selected', regionRows.length + k === selected);
    });
  }

  function select(i) {
    if (!rowCount()) { return; }
    selected = Math.max(0, Math.min(rowCount() - 1, i));
    highlight();
  }

  function setMarkChoice(k, value) {
    marks[k].choice = value;
    render();
  }

  // what a key chooses for the chosen row; a redrawn region passes it to its mark
  function choose(value) {
    if (selected < 0) { return; }
    if (selected >= regionRows.length) {
      var k = selected - regionRows.length;
      if (value === 'auto' || value === 'confirm') { return; }
      setMarkChoice(k, value);
      return;
    }
    var row = regionRows[selected];
    var redrawn = replacing(+row.dataset.id);
    if (redrawn >= 0) {
      if (value === 'confirm') { value = 'class:' + row.dataset.cls; }
      if (value !== 'auto') { setMarkChoice(redrawn, value); }
      return;
    }
    var sel = row.querySelector('select');
    sel.value = value;
    row.classList.toggle('changed', value !== 'auto');
    regionShapes[selected].setAttribute('data-choice', value);
  }

  function chooseClass(digit) {
    var name = names[digit - 1];
    if (name === undefined) { return; }
    if (selected >= 0 && selected < regionRows.length && regionRows[selected].dataset.cls === name) {
      choose('confirm');  // the region's own class is "confirm"
    } else {
      choose('class:' + name);
    }
  }

  // a typed class name: checked as the server checks it (short, printable, not background)
  function nameProblem(name) {
    if (!name) { return 'Type a class name first.'; }
    if (name.length > 40) { return 'A class name takes at most 40 characters.'; }
    if (/[\p{C}\p{Z}]/u.test(name.replace(/ /g, ''))) { return 'A class name takes letters, digits and signs, no control characters.'; }
    if (name.toLowerCase() === 'background') { return 'Background is no defect: mark the row not a defect (X).'; }
    return '';
  }

  function addName(name) {
    var same = names.filter(function (n) { return n.toLowerCase() === name.toLowerCase(); })[0];
    if (same) { return same; }
    names.push(name);
    var i = names.length;
    regionRows.forEach(function (r) {
      if (r.dataset.cls === name) { return; }
      var opt = document.createElement('option');
      opt.value = 'class:' + name;
      opt.dataset.digit = String(i);
      opt.textContent = i + ': ' + name;
      r.querySelector('select').appendChild(opt);
    });
    var known = document.createElement('option');
    known.value = name;
    document.getElementById('known-names').appendChild(known);
    renderLegend();
    return name;
  }

  // the key legend of the classes: digits 1-9, then T
  function renderLegend() {
    var legend = document.getElementById('class-keys');
    while (legend.firstChild) { legend.removeChild(legend.firstChild); }
    names.slice(0, 9).forEach(function (n, i) {
      var kbd = document.createElement('kbd');
      kbd.textContent = String(i + 1);
      legend.appendChild(kbd);
      legend.appendChild(document.createTextNode(' ' + n + ' '));
    });
    legend.appendChild(document.createTextNode('· '));
    var t = document.createElement('kbd');
    t.textContent = 'T';
    legend.appendChild(t);
    legend.appendChild(document.createTextNode(' type a class name'));
  }

  function giveName() {
    var name = nameInput.value.trim();
    var problem = nameProblem(name);
    if (problem) { say(problem); return; }
    if (selected < 0) { say('Choose a row first (arrows), then T.'); return; }
    name = addName(name);
    nameInput.value = '';
    nameInput.blur();
    chooseClass(names.indexOf(name) + 1);
    say('Class ' + name + ' given.');
  }

  nameInput.addEventListener('keydown', function (e) {
    if (e.key === 'Enter') { e.preventDefault(); giveName(); }
  });

  function removeMark() {
    var k = selected - regionRows.length;
    if (k < 0) { choose('not_defect'); return; }
    marks.splice(k, 1);
    render();
    select(Math.min(selected, rowCount() - 1));
    say('Drawn mark D' + (k + 1) + ' removed (it was not saved).');
  }

  function redraw() {
    if (selected < 0 || selected >= regionRows.length) {
      say('Choose a region of the model first (arrows), then R redraws its outline.');
      return;
    }
    var row = regionRows[selected];
    var k = replacing(+row.dataset.id);
    if (k >= 0) { say('Region ' + row.dataset.n + ' is redrawn as D' + (k + 1) + ' already: delete that mark first.'); return; }
    draw.start('polygon', +row.dataset.id);
  }

  function decide(verdict) {
    if (sent) { return; }
    form.requestSubmit(document.getElementById(verdict === 'PASS' ? 'pass' : 'fail'));
  }

  form.addEventListener('submit', function (e) {
    if (draw.active()) {
      e.preventDefault();
      say('Finish the drawing (Enter) or cancel it (Esc) before deciding.');
      return;
    }
    var unset = marks.map(function (m) { return m.choice; }).indexOf('');
    if (unset >= 0) {
      e.preventDefault();
      select(regionRows.length + unset);
      say('Drawn mark D' + (unset + 1) + ' has no class: press 1-9, T to type a name, X or U.');
      return;
    }
    document.getElementById('marks-field').value = marks.length ? JSON.stringify(marks) : '';
    sent = true;
    body.setAttribute('data-sent', e.submitter ? e.submitter.value : '');
  });
  regionRows.forEach(function (r, j) {
    r.addEventListener('click', function () { select(j); });
    r.querySelector('select').addEventListener('change', function (e) {
      select(j);
      choose(e.target.value);
    });
  });
  regionShapes.forEach(function (s, j) { s.addEventListener('click', function () { select(j); }); });
  Array.prototype.slice.call(document.querySelectorAll('#tools button')).forEach(function (b) {
    b.addEventListener('click', function () {
      var tool = b.dataset.tool;
      if (tool === 'redraw') { redraw(); } else { draw.start(tool, null); }
    });
  });


  var keys = {
    p: function () { decide('PASS'); },
    f: function () { decide('FAIL'); },
    n: function () { window.location.href = body.getAttribute('data-next'); },
    q: function () { window.location.href = body.getAttribute('data-queue'); },
    arrowdown: function () { select(selected + 1); },
    j: function () { select(selected + 1); },
    arrowup: function () { select(selected - 1); },
    k: function () { select(selected - 1); },
    x: function () { choose('not_defect'); },
    delete: removeMark,
    backspace: removeMark,
    c: function () { choose('confirm'); },
    u: function () { choose('unsure'); },
    a: function () { choose('auto'); },
    t: function () { nameInput.focus(); },
    d: function () { draw.start('polygon', null); },
    b: function () { draw.start('stroke', null); },
    r: redraw,
    '[': function () { draw.setWidth(-1); },
    ']': function () { draw.setWidth(1); },
    e: function () { document.getElementById('note').focus(); },
    o: function () {
      document.getElementById('shapes').classList.toggle('hidden');
      document.getElementById('marks').classList.toggle('hidden');
      picture.labels();
    },
    z: function () {  // the confirmation's Undo, when the decision just saved can be undone
      var undo = document.getElementById('undo');
      if (undo) { undo.click(); }
    }
  };
  // while drawing: the tool's keys, a switch of tool, the width, the outlines; nothing else
  var drawingKeys = {d: 1, b: 1, '[': 1, ']': 1, o: 1};

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT' || t.tagName === 'SELECT')) {
      if (e.key === 'Escape') { t.blur(); }
      return;
    }
    var k = e.key.toLowerCase();
    if (draw.active()) {
      if (draw.key(e)) {
        e.preventDefault();
        return;
      }
      if (!drawingKeys.hasOwnProperty(k)) {
        say('Drawing: finish it (Enter) or cancel it (Esc) first.');
        e.preventDefault();
        return;
      }
      if (k === 'd' || k === 'b') {
        draw.start(k === 'd' ? 'polygon' : 'stroke');
        e.preventDefault();
        return;
      }
    }
    if (/^[1-9]$/.test(k)) {
      chooseClass(+k);
    } else if (keys.hasOwnProperty(k)) {
      keys[k]();
    } else {
      return;
    }
    e.preventDefault();
  });

  render();
  showTools();
  select(0);
  say('Not drawing: D draws a polygon, B the brush, R redraws the chosen region.');
  body.setAttribute('data-ready', '1');
}());
