// The item page's pictures (used by item.js): each sized to its column and to under half the
// window's height, so a tall image never pushes the regions off the screen; and the labels on
// the picture (region numbers, the D1, D2, ... of drawn marks) at one size on screen, light
// text on a dark box, however many pixels the image has (the SVG layers are in its pixels).
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var LABEL_PX = 15;  // the labels' height on screen, CSS pixels

  // box: the element whose width sets the picture's size; width x height: its pixels;
  // room: the width the column leaves
  function fitBox(box, width, height, room) {
    if (!(width > 0 && height > 0 && room > 0)) { return; }
    var most = Math.max(240, window.innerHeight * 0.44);
    box.style.width = Math.max(1, Math.floor(Math.min(room, most * width / height))) + 'px';
  }

  // image pixels per screen pixel in ``svg`` (1 while it is not shown)
  function scaleOf(svg) {
    var vb = svg.viewBox && svg.viewBox.baseVal;
    var r = svg.getBoundingClientRect();
    return vb && vb.width > 0 && r.width > 0 ? vb.width / r.width : 1;
  }

  function place(t, k, vb) {
    // a region's number sits above its outline, else below it, else inside its top
    if (!t.hasAttribute('data-top')) { return; }
    var top = +t.getAttribute('data-top');
    var bottom = +t.getAttribute('data-bottom');
    var tall = (LABEL_PX + 4) * k;
    var y = top > tall ? top - 4 * k : bottom + tall <= vb.height ? bottom + tall - 2 * k : top + tall;
    t.setAttribute('y', String(y));
  }

  // every label of ``svg`` at LABEL_PX on screen, each on a dark box
  function labels(svg) {
    if (svg.classList.contains('hidden')) { return; }
    var k = scaleOf(svg);
    var vb = svg.viewBox.baseVal;
    Array.prototype.slice.call(svg.querySelectorAll('rect.label-box')).forEach(function (b) {
      b.parentNode.removeChild(b);
    });
    Array.prototype.slice.call(svg.querySelectorAll('text')).forEach(function (t) {
      t.setAttribute('font-size', String(LABEL_PX * k));
      t.setAttribute('stroke-width', String(2 * k));
      place(t, k, vb);
      var b = t.getBBox();
      if (b.x + b.width > vb.width) {  // keep it on the picture
        t.setAttribute('x', String(Math.max(0, vb.width - b.width - 3 * k)));
        b = t.getBBox();
      }
      var box = document.createElementNS(NS, 'rect');
      box.setAttribute('class', 'label-box');
      box.setAttribute('x', String(b.x - 3 * k));
      box.setAttribute('y', String(b.y - 1 * k));
      box.setAttribute('width', String(b.width + 6 * k));
      box.setAttribute('height', String(b.height + 2 * k));
      box.setAttribute('rx', String(3 * k));
      t.parentNode.insertBefore(box, t);
    });
  }

  // the item page's two pictures and their layers; data: the page's draw data (the image's
  // size). Returns labels(), which item.js calls when the marks or the outlines change.
  function setup(data) {
    var stage = document.getElementById('stage');
    var source = document.getElementById('source');
    var overlay = document.getElementById('overlay');
    var shapes = document.getElementById('shapes');
    var marks = document.getElementById('marks');

    function allLabels() { labels(shapes); labels(marks); }

    // both pictures fit their column and under half the window; then the labels fit them
    function fit() {
      fitBox(stage, data.width, data.height, stage.parentNode.clientWidth - 12);
      if (overlay.naturalWidth > 0) {
        fitBox(overlay, overlay.naturalWidth, overlay.naturalHeight,
          overlay.parentNode.clientWidth - 12);
      }
      allLabels();
    }

    // regions are in the frame the model saw: a recorded overlay's size (data-frame; the grey
    // stand-in for a missing overlay has a size of its own), else the image's (the viewBox)
    function overlayLoaded() {
      if (overlay.naturalWidth > 0 && overlay.hasAttribute('data-frame')) {
        shapes.setAttribute('viewBox', '0 0 ' + overlay.naturalWidth + ' ' + overlay.naturalHeight);
      }
      fit();
    }

    if (overlay.complete) { overlayLoaded(); } else { overlay.addEventListener('load', overlayLoaded); }
    if (!source.complete) { source.addEventListener('load', allLabels); }
    window.addEventListener('resize', fit);
    fit();
    return {labels: allLabels};
  }

  window.InspectPicture = {setup: setup, fitBox: fitBox, labels: labels, LABEL_PX: LABEL_PX};
}());
