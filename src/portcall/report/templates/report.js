// Sorting and filtering of the matrix. Every value it reads comes from the DOM (attributes and
// text set by the server-side template); nothing is ever written as markup, only as
// attributes, classes and textContent. The filters are also read from, and written to, the
// address's fragment: #verdict=filtered,refused&host=mail&sort=health
(function () {
  "use strict";
  var HEALTH_RANK = { "": 0, healthy: 1, warnings: 2, failures: 3 };
  var table = document.getElementById("matrix");
  var form = document.getElementById("controls");
  if (!table || !form) { return; }
  var body = table.tBodies[0];
  var hostInput = document.getElementById("filter-host");
  var sortSelect = document.getElementById("sort-by");
  var boxes = Array.prototype.slice.call(form.querySelectorAll("#filter-verdict input[name=verdict]"));
  var sortColumn = "";

  function rows() { return Array.prototype.slice.call(body.rows); }

  function chosenVerdicts() {
    return boxes.filter(function (box) { return box.checked; }).map(function (box) { return box.value; });
  }

  function hostMatches(row, text) {
    if (!text) { return true; }
    var names = (row.getAttribute("data-host") + " " + row.getAttribute("data-address")).toLowerCase();
    return names.indexOf(text.toLowerCase()) !== -1;
  }

  function applyFilters() {
    var verdicts = chosenVerdicts();
    var text = hostInput.value.trim();
    var shown = 0;
    rows().forEach(function (row) {
      var anyCell = false;
      Array.prototype.forEach.call(row.querySelectorAll("td.cell"), function (cell) {
        var verdict = cell.getAttribute("data-verdict");
        var keep = verdict !== "" && verdicts.indexOf(verdict) !== -1;
        cell.classList.toggle("filtered-out", verdict !== "" && !keep);
        anyCell = anyCell || keep;
      });
      var visible = anyCell && hostMatches(row, text);
      row.hidden = !visible;
      shown += visible ? 1 : 0;
    });
    document.getElementById("shown-count").textContent =
      shown + " of " + body.rows.length + " hosts shown";
  }

  function cellHealth(row, column) {
    var cell = row.querySelector('td.cell[data-column="' + CSS.escape(column) + '"]');
    return cell ? HEALTH_RANK[cell.getAttribute("data-health")] || 0 : 0;
  }

  function sortKey(row, how) {
    if (how === "host") { return [row.getAttribute("data-host"), row.getAttribute("data-address")]; }
    if (how === "health") { return [-HEALTH_RANK[row.getAttribute("data-health")]]; }
    if (how === "column") { return [-cellHealth(row, sortColumn)]; }
    return [];
  }

  function compare(a, b) {
    for (var i = 0; i < a.length; i++) {
      if (a[i] < b[i]) { return -1; }
      if (a[i] > b[i]) { return 1; }
    }
    return 0;
  }

  function applySort(how) {
    var keyed = rows().map(function (row) {
      return { row: row, key: sortKey(row, how).concat([Number(row.getAttribute("data-order"))]) };
    });
    keyed.sort(function (a, b) { return compare(a.key, b.key); });
    keyed.forEach(function (item) { body.appendChild(item.row); });
  }

  function currentSort() {
    return sortSelect.value === "column" ? "column:" + sortColumn : sortSelect.value;
  }

  function writeHash() {
    var parts = [];
    var verdicts = chosenVerdicts();
    if (verdicts.length !== boxes.length) { parts.push("verdict=" + verdicts.map(encodeURIComponent).join(",")); }
    if (hostInput.value.trim()) { parts.push("host=" + encodeURIComponent(hostInput.value.trim())); }
    if (currentSort() !== "order") { parts.push("sort=" + encodeURIComponent(currentSort())); }
    try {
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
    } catch (e) { /* a page opened from a file may refuse; the view still works */ }
  }

  function setSort(how) {
    if (how.indexOf("column:") === 0) {
      sortColumn = how.slice(7);
      if (!sortSelect.querySelector('option[value="column"]')) {
        var option = document.createElement("option");
        option.value = "column";
        option.textContent = "the chosen port's health";
        sortSelect.appendChild(option);
      }
      how = "column";
    }
    sortSelect.value = how;
    applySort(how);
  }

  function readHash() {
    var wanted = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var at = part.indexOf("=");
      if (at > 0) {
        try { wanted[part.slice(0, at)] = decodeURIComponent(part.slice(at + 1)); } catch (e) { /* ignored */ }
      }
    });
    if (wanted.verdict !== undefined) {
      var list = wanted.verdict.split(",");
      boxes.forEach(function (box) { box.checked = list.indexOf(box.value) !== -1; });
    }
    if (wanted.host !== undefined) { hostInput.value = wanted.host; }
    setSort(wanted.sort || "order");
    applyFilters();
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("input", function () { applyFilters(); writeHash(); });
  form.addEventListener("change", function (event) {
    if (event.target === sortSelect) { setSort(sortSelect.value === "column" ? "column:" + sortColumn : sortSelect.value); }
    applyFilters();
    writeHash();
  });
  table.addEventListener("click", function (event) {
    var button = event.target.closest("button.sort");
    if (!button) { return; }
    var how = button.getAttribute("data-sort");
    setSort(how === "column" ? "column:" + button.getAttribute("data-column") : how);
    writeHash();
  });
  window.addEventListener("hashchange", readHash);
  // A printed report shows every cell's details.
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) {
      if (!d.open) { d.open = true; d.setAttribute("data-opened-for-print", ""); }
    });
  });
  window.addEventListener("afterprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details[data-opened-for-print]"), function (d) {
      d.open = false;
      d.removeAttribute("data-opened-for-print");
    });
  });
  readHash();
})();
