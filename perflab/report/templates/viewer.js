/* perflab frame viewer: side by side / wipe of kept frames, per-frame metrics over time. No external resources. */
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (e) { body.setAttribute("data-js-error", String(e.message)); });
  var data = JSON.parse(document.getElementById("viewer-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#9333ea"];

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function select(label, options, value, onChange) {
    var lab = el("label", {}, label + " ");
    var s = el("select", { "data-role": label.toLowerCase().replace(/[^a-z]+/g, "-") });
    options.forEach(function (o) {
      var opt = el("option", { value: o[0] }, o[1]);
      if (o[0] === value) { opt.selected = true; }
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onChange(s.value); });
    lab.appendChild(s);
    return lab;
  }
  function fmt(v, unit) {
    if (v === null || v === undefined) { return "—"; }
    var a = Math.abs(v), d = a >= 100 ? 1 : a >= 10 ? 2 : a >= 1 ? 3 : 4;
    return v.toFixed(d) + (unit ? " " + unit : "");
  }
  function hashState() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) { out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); }
    });
    return out;
  }

  function Viewer(section, g, index, init) {
    var byId = {};
    g.sources.forEach(function (s) { byId[s.id] = s; });
    var models = g.sources.filter(function (s) { return s.kind === "model"; });
    var base = g.sources.filter(function (s) { return s.kind === "baseline"; });
    var pick = function (want, fallback) { return want && byId[want] ? want : fallback; };
    var st = {
      frame: g.kept.indexOf(init.frame) >= 0 ? init.frame : g.kept[0],
      a: pick(init.a, models.length ? models[0].id : g.sources[g.sources.length - 1].id),
      b: pick(init.b, base.length ? base[0].id : "hr"),
      c: pick(init.c, "hr"),
      mode: init.mode === "wipe" ? "wipe" : "sbs",
      zoom: ["0.5", "1", "2", "4"].indexOf(init.zoom) >= 0 ? init.zoom : "1",
      wipe: Math.max(0, Math.min(100, parseFloat(init.wipe || "50") || 50))
    };
    var colours = {}, nColour = 0;  /* one colour per cell in every chart and in the list of scores */
    g.metrics.forEach(function (m) {
      m.tracks.forEach(function (t) {
        if (!(t.cell in colours)) { colours[t.cell] = t.baseline ? "#111827" : PALETTE[nColour++ % PALETTE.length]; }
      });
    });
    var srcOptions = g.sources.map(function (s) { return [s.id, s.label + (s.emulated ? " (emulated)" : "")]; });
    var controls = el("div", { "class": "controls" });
    controls.appendChild(select("Frame", g.kept.map(function (f) { return [f, f]; }), st.frame, function (v) { st.frame = v; draw(); }));
    controls.appendChild(select("Mode", [["sbs", "side by side (A | B | C)"], ["wipe", "wipe (A over B)"]], st.mode,
      function (v) { st.mode = v; draw(); }));
    controls.appendChild(select("A", srcOptions, st.a, function (v) { st.a = v; draw(); }));
    controls.appendChild(select("B", srcOptions, st.b, function (v) { st.b = v; draw(); }));
    var cSel = select("C", [["", "(none)"]].concat(srcOptions), st.c, function (v) { st.c = v; draw(); });
    controls.appendChild(cSel);
    controls.appendChild(select("Zoom", [["0.5", "½×"], ["1", "1×"], ["2", "2×"], ["4", "4×"]], st.zoom,
      function (v) { st.zoom = v; draw(); }));
    var slider = el("input", { type: "range", min: "0", max: "100", step: "0.5", value: String(st.wipe), "data-role": "wipe" });
    var sliderLab = el("label", {}, "Wipe ");
    sliderLab.appendChild(slider);
    controls.appendChild(sliderLab);
    var stage = el("div", { "class": "stage" });
    var scores = el("div", { "class": "scores" });
    var charts = el("div", { "class": "charts" });
    section.appendChild(controls);
    section.appendChild(stage);
    section.appendChild(scores);
    section.appendChild(charts);

    function image(id) {
      var s = byId[id];
      var src = s && s.images[st.frame];
      if (!src) { return null; }
      var img = el("img", { src: src, alt: s.label + ", frame " + st.frame, "data-source": id });
      var k = parseFloat(st.zoom) * (s.kind === "lr" ? g.scale : 1);
      var size = function () { if (img.naturalWidth) { img.style.width = (img.naturalWidth * k) + "px"; } };
      img.addEventListener("load", size);
      if (img.complete) { size(); }
      return img;
    }
    function pane(id) {
      var p = el("div", { "class": "pane", "data-source": id });
      var img = image(id);
      if (img) { p.appendChild(img); } else {
        p.appendChild(el("div", { "class": "empty" }, (byId[id] ? byId[id].label : id) + (id === "hr" ? ": none for this frame (an LR-only input has no HR)" : ": no image kept for this frame")));
      }
      p.appendChild(el("span", { "class": "cap" }, byId[id] ? byId[id].label : id));
      return p;
    }
    function drawWipe() {
      var w = el("div", { "class": "wipe" });
      var under = image(st.b), over = image(st.a);
      if (!under || !over) {
        stage.appendChild(el("div", { "class": "empty" }, "A or B has no image kept for this frame"));
        return;
      }
      var top = el("div", { "class": "top" });
      top.appendChild(over);
      var line = el("div", { "class": "line" });
      w.appendChild(under);
      w.appendChild(top);
      w.appendChild(line);
      w.appendChild(el("span", { "class": "cap" }, "A: " + byId[st.a].label));
      w.appendChild(el("span", { "class": "cap right" }, "B: " + byId[st.b].label));
      var place = function () {
        top.style.clipPath = "inset(0 " + (100 - st.wipe) + "% 0 0)";
        line.style.left = "calc(" + st.wipe + "% - 1px)";
        slider.value = String(st.wipe);
        section.setAttribute("data-wipe", String(st.wipe));
      };
      var follow = function (e) {
        if (e.buttons !== 1 && e.type !== "pointerdown") { return; }
        var r = w.getBoundingClientRect();
        st.wipe = Math.max(0, Math.min(100, 100 * (e.clientX - r.left) / r.width));
        place();
      };
      w.addEventListener("pointerdown", follow);
      w.addEventListener("pointermove", follow);
      slider.oninput = function () { st.wipe = parseFloat(slider.value); place(); };
      place();
      stage.appendChild(w);
    }
    function drawScores() {
      scores.textContent = "";
      var i = g.frames.indexOf(st.frame);
      var rows = {}, labels = {};
      g.metrics.forEach(function (m) {
        m.tracks.forEach(function (t) {
          var v = i >= 0 ? t.values[i] : null;
          labels[t.cell] = t.label + (t.emulated ? " (emulated)" : "") + (t.baseline ? " — dashed" : "");
          (rows[t.cell] = rows[t.cell] || []).push(m.label + " " + fmt(v, m.unit));
        });
      });
      var ul = el("ul", { "class": "plain" });
      Object.keys(rows).forEach(function (cell) {
        var li = el("li", { "data-cell": cell }, labels[cell] + " — frame " + st.frame + ": " + rows[cell].join(", "));
        li.style.borderLeft = "14px solid " + colours[cell];
        li.style.paddingLeft = "6px";
        ul.appendChild(li);
      });
      scores.appendChild(ul);
    }
    function drawCharts() {
      charts.textContent = "";
      var n = g.frames.length, W = 860, H = 130, L = 165, R = 12, T = 18, B = 22;
      var x = function (k) { return L + (n > 1 ? k * (W - L - R) / (n - 1) : (W - L - R) / 2); };
      var cur = g.frames.indexOf(st.frame);
      g.metrics.forEach(function (m) {
        var vals = [];
        m.tracks.forEach(function (t) { t.values.forEach(function (v) { if (v !== null) { vals.push(v); } }); });
        if (!vals.length) { return; }
        var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
        if (hi === lo) { hi = lo + 1; }
        var y = function (v) { return T + (hi - v) * (H - T - B) / (hi - lo); };
        var s = svg("svg", { width: String(W), height: String(H), "data-metric": m.key, role: "img",
          "aria-label": m.label + " per frame" });
        g.kept.forEach(function (f) {
          var k = g.frames.indexOf(f);
          var half = n > 1 ? (W - L - R) / (n - 1) / 2 : 6;
          s.appendChild(svg("rect", { "class": "kept", x: String(x(k) - half), y: String(T), width: String(2 * half),
            height: String(H - T - B) }));
        });
        [m.label, m.unit ? "(" + m.unit + ")" : "", (m.higher_better ? "higher" : "lower") + " is better"]
          .filter(function (t) { return t; }).forEach(function (t, k) {
            var line = svg("text", { x: "4", y: String(T + 12 + 14 * k) });
            line.textContent = t;
            s.appendChild(line);
          });
        [hi, lo].forEach(function (v) {
          var t = svg("text", { x: String(L - 4), y: String(y(v) + 4), "text-anchor": "end" });
          t.textContent = fmt(v, "");
          s.appendChild(t);
        });
        m.tracks.forEach(function (t) {
          var c = colours[t.cell];
          // one polyline per run of consecutive values: a frame without one (an LR-only frame, a
          // sequence's first) breaks the line, and a value alone between gaps is a dot, not nothing
          var runs = [[]];
          t.values.forEach(function (v, k) {
            if (v === null) { if (runs[runs.length - 1].length) { runs.push([]); } return; }
            runs[runs.length - 1].push([x(k), y(v)]);
          });
          runs.filter(function (r) { return r.length; }).forEach(function (r) {
            var line = r.length === 1
              ? svg("circle", { cx: r[0][0].toFixed(1), cy: r[0][1].toFixed(1), r: "2.5", fill: c, "data-cell": t.cell })
              : svg("polyline", { points: r.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" "),
                fill: "none", stroke: c, "stroke-width": "1.5", "data-cell": t.cell });
            if (r.length > 1 && t.baseline) { line.setAttribute("stroke-dasharray", "5 3"); } else if (r.length > 1 && t.emulated) { line.setAttribute("stroke-dasharray", "2 2"); }
            var title = svg("title", {});
            title.textContent = t.label + (t.emulated ? " (emulated)" : "");
            line.appendChild(title);
            s.appendChild(line);
          });
        });
        if (cur >= 0) {
          s.appendChild(svg("line", { "class": "cur", x1: String(x(cur)), x2: String(x(cur)), y1: String(T), y2: String(H - B) }));
        }
        var axis = svg("text", { x: String(W - R), y: String(H - 6), "text-anchor": "end" });
        axis.textContent = "frame 0–" + (n - 1) + " (input order)";
        s.appendChild(axis);
        s.addEventListener("click", function (e) {
          var r = s.getBoundingClientRect(), px = e.clientX - r.left, best = null, dist = Infinity;
          g.kept.forEach(function (f) {
            var d = Math.abs(x(g.frames.indexOf(f)) - px);
            if (d < dist) { dist = d; best = f; }
          });
          if (best !== null) { st.frame = best; controls.querySelector("select[data-role=frame]").value = best; draw(); }
        });
        charts.appendChild(s);
      });
    }
    function draw() {
      stage.textContent = "";
      cSel.style.display = st.mode === "sbs" ? "" : "none";
      sliderLab.style.display = st.mode === "wipe" ? "" : "none";
      if (st.mode === "wipe") {
        drawWipe();
      } else {
        var row = el("div", { "class": "sbs" });
        [st.a, st.b, st.c].filter(function (id, k, all) { return id && all.indexOf(id) === k; }).forEach(function (id) {
          row.appendChild(pane(id));
        });
        stage.appendChild(row);
      }
      ["frame", "mode", "a", "b", "c", "zoom"].forEach(function (k) { section.setAttribute("data-" + k, String(st[k])); });
      drawScores();
      drawCharts();
    }
    draw();
    section.setAttribute("data-ready", "1");
  }

  var init = hashState();
  var want = parseInt(init.group || "0", 10);
  data.groups.forEach(function (g, i) {
    var section = document.getElementById("viewer-" + i);
    if (section) { new Viewer(section, g, i, i === want ? init : {}); }
  });
  body.setAttribute("data-viewer-ready", String(data.groups.length));
}());
