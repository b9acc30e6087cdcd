// The item page from the keyboard: P pass, F fail, N next, Q queue; arrows or J/K choose a
// region, X not a defect, C confirm, U unsure, A as the verdict says, digits pick a class;
// E writes a note (Esc leaves it), O hides the outlines. Without JavaScript the form works too.
(function () {
  'use strict';
  var body = document.body;
  var form = document.getElementById('decision');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#regions tr.region'));
  var shapes = Array.prototype.slice.call(document.querySelectorAll('#shapes .shape'));
  var selected = -1;
  var sent = false;

  function select(i) {
    if (!rows.length) { return; }
    selected = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, j) { r.classList.toggle('selected', j === selected); });
    shapes.forEach(function (s, j) { s.classList.toggle('selected', j === selected); });
  }

  function choose(value) {
    if (selected < 0) { return; }
    var sel = rows[selected].querySelector('select');
    sel.value = value;
    rows[selected].classList.toggle('changed', value !== 'auto');
    shapes[selected].setAttribute('data-choice', value);
  }

  function chooseClass(digit) {
    if (selected < 0) { return; }
    var opt = rows[selected].querySelector('option[data-digit="' + digit + '"]');
    choose(opt ? opt.value : 'confirm');  // the region's own class is "confirm"
  }

  function decide(verdict) {
    if (sent) { return; }
    sent = true;
    body.setAttribute('data-sent', verdict);
    form.requestSubmit(document.getElementById(verdict === 'PASS' ? 'pass' : 'fail'));
  }

  form.addEventListener('submit', function () { sent = true; });
  rows.forEach(function (r, j) {
    r.addEventListener('click', function () { select(j); });
    r.querySelector('select').addEventListener('change', function (e) {
      select(j);
      choose(e.target.value);
    });
  });
  shapes.forEach(function (s, j) { s.addEventListener('click', function () { select(j); }); });

  var overlay = document.getElementById('overlay');
  // regions are in the frame the model saw: a recorded overlay's size (data-frame; the grey
  // stand-in for a missing overlay has a size of its own), else the image's (the viewBox)
  function fitShapes() {
    if (overlay.naturalWidth > 0 && overlay.hasAttribute('data-frame')) {
      document.getElementById('shapes').setAttribute(
        'viewBox', '0 0 ' + overlay.naturalWidth + ' ' + overlay.naturalHeight);
    }
  }
  if (overlay.complete) { fitShapes(); } else { overlay.addEventListener('load', fitShapes); }

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
    delete: function () { choose('not_defect'); },
    backspace: function () { choose('not_defect'); },
    c: function () { choose('confirm'); },
    u: function () { choose('unsure'); },
    a: function () { choose('auto'); },
    e: function () { document.getElementById('note').focus(); },
    o: function () { document.getElementById('shapes').classList.toggle('hidden'); }
  };

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT' || t.tagName === 'SELECT')) {
      if (e.key === 'Escape') { t.blur(); }
      return;
    }
    var k = e.key.toLowerCase();
    if (/^[1-9]$/.test(k)) {
      chooseClass(k);
    } else if (keys.hasOwnProperty(k)) {
      keys[k]();
    } else {
      return;
    }
    e.preventDefault();
  });

  select(0);
  body.setAttribute('data-ready', '1');
}());
