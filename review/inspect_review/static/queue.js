// The queue: arrows or J/K choose an item, Enter opens it, Z undoes the decision just saved
// (when the page confirms one); every few seconds the page asks for
// items recorded since it loaded and puts them in their place (REVIEW first, then FAIL, newest
// first), and marks the items other operators decided meanwhile, without a reload.
(function () {
  'use strict';
  var body = document.body;
  var tbody = document.querySelector('#queue tbody');
  var last = Number(body.getAttribute('data-last-id')) || 0;
  var lastReview = Number(body.getAttribute('data-last-review')) || 0;
  var pendingOnly = body.getAttribute('data-status') === 'pending';
  var pollMs = Number(body.getAttribute('data-poll-ms')) || 5000;
  var query = body.getAttribute('data-query');
  var current = 0;

  function rows() { return Array.prototype.slice.call(tbody.querySelectorAll('tr.row')); }

  function select(i) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r, j) { r.classList.toggle('selected', j === current); });
    all[current].scrollIntoView({block: 'nearest'});
  }

  function open(row) { if (row) { window.location.href = row.getAttribute('data-href'); } }

  function insert(html) {
    var holder = document.createElement('tbody');
    holder.innerHTML = html;  // rendered and escaped by the server
    var first = tbody.firstElementChild;
    var firstFail = tbody.querySelector('tr.row[data-verdict="FAIL"]');
    var added = 0;
    Array.prototype.slice.call(holder.querySelectorAll('tr.row')).forEach(function (row) {
      // a row asked again (committed late, out of id order) is shown once
      if (tbody.querySelector('tr.row[data-id="' + row.getAttribute('data-id') + '"]')) {
        return;
      }
      added += 1;
      row.classList.add('new');
      tbody.insertBefore(row, row.getAttribute('data-verdict') === 'REVIEW' ? first : firstFail);
    });
    var empty = tbody.querySelector('tr.empty');
    if (empty && added) { empty.parentNode.removeChild(empty); }
    select(current);
    return added;
  }

  // another operator decided an item this page lists: a pending queue drops its row, any
  // other queue shows who decided it, so nobody opens it from here believing it undecided
  function markDecided(list) {
    list.forEach(function (d) {
      var row = tbody.querySelector('tr.row[data-id="' + Number(d.id) + '"]');
      if (!row) { return; }
      if (pendingOnly) {
        row.parentNode.removeChild(row);
        return;
      }
      row.classList.add('decided');
      var cell = row.lastElementChild;
      var badge = document.createElement('span');
      badge.className = 'badge ' + (d.verdict === 'PASS' ? 'PASS' : 'FAIL');
      badge.textContent = d.verdict;
      var by = document.createElement('span');
      by.className = 'muted';
      by.textContent = ' ' + d.by;
      cell.textContent = '';
      cell.appendChild(badge);
      cell.appendChild(by);
    });
    select(current);
  }

  var stopped = false;

  function signedOut() {  // the session ended: say so instead of a queue that stopped moving
    stopped = true;
    var note = document.getElementById('signed-out');
    if (note) { note.hidden = false; }
  }

  function poll() {
    var url = '/queue/new?after=' + last + '&decided_after=' + lastReview +
      (query ? '&' + query : '');
    fetch(url, {headers: {Accept: 'application/json'}, credentials: 'same-origin'})
      .then(function (r) {
        if (r.status === 401) { signedOut(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (d) {
        if (!d) { return; }
        last = d.last;
        document.getElementById('pending').textContent = d.pending;
        if (d.decided) {
          lastReview = d.decided_last;
          markDecided(d.decided);
        }
        if (d.n) {
          var added = insert(d.html);
          body.setAttribute('data-arrived', Number(body.getAttribute('data-arrived')) + added);
        }
      })
      .catch(function () { /* the server is away: ask again later */ })
      .then(function () { if (!stopped) { window.setTimeout(poll, pollMs); } });
  }

  tbody.addEventListener('click', function (e) {
    if (e.target.tagName === 'A') { return; }
    var row = e.target.closest('tr.row');
    if (row) { open(row); }
  });
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) {
      return;
    }
    var k = e.key.toLowerCase();
    if (k === 'arrowdown' || k === 'j') { select(current + 1); }
    else if (k === 'arrowup' || k === 'k') { select(current - 1); }
    else if (k === 'enter' || k === 'o') { open(rows()[current]); }
    else if (k === 'z' && document.getElementById('undo')) { document.getElementById('undo').click(); }
    else { return; }
    e.preventDefault();
  });

  select(0);
  window.setTimeout(poll, pollMs);
  body.setAttribute('data-ready', '1');
}());
