/* perflab matrix: sort, filter, emulated switches, #device=SERIAL links. No external resources. */
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (e) { body.setAttribute("data-js-error", String(e.message)); });
  var table = document.getElementById("mx");
  var tbody = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var rows = Array.prototype.slice.call(tbody.rows);
  var fSoc = document.getElementById("f-soc"), fVendor = document.getElementById("f-vendor"),
      fKind = document.getElementById("f-kind"), fEmu = document.getElementById("f-emulated"),
      shown = document.getElementById("shown"), covEmu = document.getElementById("cov-emulated");
  var state = { sort: "", dir: "asc" };

  function sortBy(key, dir) {
    var idx = -1;
    heads.forEach(function (h, i) {
      h.classList.remove("sorted-asc", "sorted-desc");
      if (h.getAttribute("data-key") === key) { idx = i; }
    });
    if (idx < 0) { return false; }
    var numeric = heads[idx].getAttribute("data-type") === "num";
    var sign = dir === "desc" ? -1 : 1;
    var keyed = rows.map(function (r, pos) {
      var raw = r.cells[idx].getAttribute("data-sort") || "";
      return { r: r, pos: pos, empty: raw === "", v: numeric ? parseFloat(raw) : raw.toLowerCase() };
    });
    keyed.sort(function (a, b) {
      if (a.empty !== b.empty) { return a.empty ? 1 : -1; }  /* missing values last, whatever the direction */
      if (a.v < b.v) { return -sign; }
      if (a.v > b.v) { return sign; }
      return a.pos - b.pos;
    });
    keyed.forEach(function (k) { tbody.appendChild(k.r); });
    heads[idx].classList.add(dir === "desc" ? "sorted-desc" : "sorted-asc");
    state.sort = key; state.dir = dir;
    body.setAttribute("data-sort", key + ":" + dir);
    return true;
  }

  function applyFilters() {
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!fSoc.value || r.getAttribute("data-soc") === fSoc.value) &&
               (!fVendor.value || r.getAttribute("data-vendor") === fVendor.value) &&
               (!fKind.value || r.getAttribute("data-kind") === fKind.value) &&
               (fEmu.checked || r.getAttribute("data-kind") !== "emulated");
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + " of " + rows.length + " devices shown";
    body.setAttribute("data-shown", String(n));
  }

  function applyCoverage() {
    if (!covEmu) { return; }
    var def = document.getElementById("cov-default"), other = document.getElementById("cov-other");
    var wantIncluded = covEmu.checked;
    var defIncluded = def.getAttribute("data-emulated") === "included";
    def.hidden = wantIncluded !== defIncluded;
    other.hidden = !def.hidden;
    body.setAttribute("data-coverage-emulated", wantIncluded ? "included" : "excluded");
  }

  heads.forEach(function (h) {
    h.addEventListener("click", function () {
      var key = h.getAttribute("data-key");
      sortBy(key, state.sort === key && state.dir === "asc" ? "desc" : "asc");
    });
  });
  [fSoc, fVendor, fKind, fEmu].forEach(function (el) { el.addEventListener("change", applyFilters); });
  if (covEmu) { covEmu.addEventListener("change", applyCoverage); }

  function setSelect(sel, value) {
    for (var i = 0; i < sel.options.length; i++) {
      if (sel.options[i].value === value) { sel.value = value; return; }
    }
  }

  /* state from the address: #sort=KEY:desc&soc=…&vendor=…&kind=…&emulated=0&cov_emulated=1&device=SERIAL */
  var params = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    if (!kv) { return; }
    var i = kv.indexOf("=");
    var k = i < 0 ? kv : kv.slice(0, i), v = i < 0 ? "" : kv.slice(i + 1);
    try { params[decodeURIComponent(k)] = decodeURIComponent(v.replace(/\+/g, " ")); } catch (err) { /* ignore a bad escape */ }
  });
  if (params.soc) { setSelect(fSoc, params.soc); }
  if (params.vendor) { setSelect(fVendor, params.vendor); }
  if (params.kind) { setSelect(fKind, params.kind); }
  if (params.emulated === "0") { fEmu.checked = false; }
  if (covEmu && params.cov_emulated) { covEmu.checked = params.cov_emulated === "1"; }
  if (params.sort) {
    var j = params.sort.lastIndexOf(":");
    var key = j < 0 ? params.sort : params.sort.slice(0, j), dir = j < 0 ? "asc" : params.sort.slice(j + 1);
    sortBy(key, dir === "desc" ? "desc" : "asc");
  }
  applyFilters();
  applyCoverage();
  if (params.device) {
    rows.forEach(function (r) {
      if (r.getAttribute("data-serial") === params.device) {
        r.classList.add("target");
        r.hidden = false;
        if (r.scrollIntoView) { r.scrollIntoView({ block: "center" }); }
      }
    });
  }
  body.setAttribute("data-ready", "1");
})();
