/* sleepstream live page: polls /live/api/* and draws SVG. No dependencies.
 *
 * Test hooks: body[data-ready="1"] once a night (or the empty list) has been drawn,
 * body[data-updates] counts successful refreshes; #hyp-causal and #hyp-offline carry
 * data-epochs (scored epochs drawn) and data-stage-counts (JSON per stage); #summary
 * carries the summary's numbers as data attributes (data-available="1" once it exists);
 * #night carries data-stage-set (4 or 5: the psg models' W, N1, N2, N3, REM).
 */
(function () {
  "use strict";

  var NS = "http://www.w3.org/2000/svg";
  var REFRESH_MS = 1500;
  var ML = 84, MR = 14;                        // plot margins, px (match .caption margin)
  // hypnogram rows, top to bottom, of the 4-class models and of the 5-class psg models
  var ORDERS = { 4: ["W", "REM", "light", "deep"], 5: ["W", "REM", "N1", "N2", "N3"] };
  var LABEL = { W: "Wake", REM: "REM", light: "Light", deep: "Deep", N1: "N1", N2: "N2",
                N3: "N3" };
  var LEGEND = { W: "Wake", REM: "REM", light: "Light (N1+N2)", deep: "Deep (N3)",
                 N1: "N1", N2: "N2", N3: "N3 (deep)" };
  // colours as in models/evaluation/plots.py: N2 as light sleep, N3 as deep sleep
  var COLOR = { W: "#e8a33d", REM: "#d62728", light: "#3b7dc4", deep: "#1b3a6b",
                N1: "#8fc1e3", N2: "#3b7dc4", N3: "#1b3a6b" };
  var MIN_SPAN_S = 8 * 3600;                   // a live night is drawn on at least 8 h

  var state = {
    subject: new URLSearchParams(location.search).get("subject"),
    session: new URLSearchParams(location.search).get("session"),
    night: null, version: null, subjects: [], updates: 0, timer: null,
  };

  function $(id) { return document.getElementById(id); }

  function order(night) { return ORDERS[night.stages.length] || ORDERS[4]; }

  function isEeg(night) { return night.family === "psg" || night.channels.length > 0; }

  function el(tag, attrs, parent, text) {
    var node = document.createElementNS(NS, tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* ---------------------------------------------------------------- time */

  function fmt(tz, opts) {
    try { return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: tz }, opts)); }
    catch (e) { return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC" }, opts)); }
  }

  function clock(tz, ms, seconds) {
    var o = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (seconds) o.second = "2-digit";
    return fmt(tz, o).format(new Date(ms));
  }

  function dateText(tz, ms) {
    return fmt(tz, { weekday: "short", day: "numeric", month: "short", year: "numeric" })
      .format(new Date(ms));
  }

  /* seconds from ms to the next full local hour in tz (0 when ms is on one) */
  function toNextHour(tz, ms) {
    var parts = fmt(tz, { minute: "numeric", second: "numeric" }).formatToParts(new Date(ms));
    var m = 0, s = 0;
    parts.forEach(function (p) {
      if (p.type === "minute") m = +p.value;
      if (p.type === "second") s = +p.value;
    });
    var sec = (60 - m) * 60 - s - (ms % 1000) / 1000;
    return sec >= 3600 ? sec - 3600 : sec;
  }

  function minutesText(min) {
    if (min === null || min === undefined) return "–";
    var h = Math.floor(min / 60), m = Math.round(min - 60 * h);
    if (m === 60) { h += 1; m = 0; }
    return h ? h + " h " + (m < 10 ? "0" : "") + m + " min" : m + " min";
  }

  /* ---------------------------------------------------------------- geometry */

  function frame(svg, night) {
    var width = svg.getBoundingClientRect().width || 1000;
    var height = +svg.getAttribute("height");
    var n = night.n_epochs, epoch = night.epoch_s, start = Date.parse(night.started_at);
    // the session's own length once its end is known (the worker may still be catching up),
    // else the night so far rounded up to the hour, at least MIN_SPAN_S
    var span = n * epoch;
    if (night.ended_at !== null) {
      span = Math.max(span, (Date.parse(night.ended_at) - start) / 1000);
    } else if (night.summary === null) {
      span = Math.max(MIN_SPAN_S, Math.ceil((n * epoch + 1800) / 3600) * 3600);
    }
    span = Math.max(span, epoch);
    var w = width - ML - MR;
    return {
      width: width, height: height, w: w, span: span, epoch: epoch,
      scoring: night.summary === null && night.offline.n_scored === 0,
      x: function (t) { return ML + (t / span) * w; },
      start: start,
    };
  }

  /* clock-hour tick times in s since the start */
  function hourTicks(f, tz) {
    var step = f.span <= 14 * 3600 ? 3600 : f.span <= 28 * 3600 ? 7200 : 4 * 3600;
    var first = toNextHour(tz, f.start);
    var out = [];
    for (var t = first; t <= f.span + 1e-6; t += step) out.push(t);
    return out;
  }

  function gridX(svg, f, ticks, top, bottom) {
    ticks.forEach(function (t) {
      el("line", { class: "grid", x1: f.x(t), x2: f.x(t), y1: top, y2: bottom }, svg);
    });
  }

  /* runs of consecutive epochs where pred(i) holds: [[a, b), ...] */
  function runs(n, pred) {
    var out = [], a = -1;
    for (var i = 0; i <= n; i++) {
      var on = i < n && pred(i);
      if (on && a < 0) a = i;
      if (!on && a >= 0) { out.push([a, i]); a = -1; }
    }
    return out;
  }

  function countStages(night, stages) {
    var counts = {}, total = 0;
    night.stages.forEach(function (s) { counts[s] = 0; });
    stages.forEach(function (code) {
      if (code >= 0) { counts[night.stages[code]] += 1; total += 1; }
    });
    return { counts: counts, total: total };
  }

  /* ---------------------------------------------------------------- panels */

  function drawHypnogram(svg, night, kind, ticks) {
    svg.replaceChildren();
    var f = frame(svg, night);
    var stages = night[kind].stage;
    var c = countStages(night, stages);
    svg.setAttribute("data-epochs", String(c.total));
    svg.setAttribute("data-stage-counts", JSON.stringify(c.counts));
    var rows = order(night);
    var top = 8, bottom = f.height - 8, row = (bottom - top) / (rows.length - 1);
    var level = {};
    rows.forEach(function (s, i) { level[s] = top + i * row; });
    var yOf = function (code) { return level[night.stages[code]]; };
    var x = function (i) { return f.x(i * f.epoch); };

    runs(night.n_epochs, function (i) { return night.valid[i] === 0 && night.causal.stage[i] >= 0; })
      .forEach(function (r) {
        el("rect", { class: "nodata", x: x(r[0]), y: top - 6, width: x(r[1]) - x(r[0]),
                     height: bottom - top + 12 }, svg);
      });
    gridX(svg, f, ticks, top - 6, bottom + 6);
    rows.forEach(function (s) {
      el("line", { class: "hgrid", x1: ML, x2: ML + f.w, y1: level[s], y2: level[s] }, svg);
      var g = el("g", {}, svg);
      el("rect", { x: 6, y: level[s] - 5, width: 10, height: 10, rx: 2, fill: COLOR[s] }, g);
      el("text", { class: "ylab", x: 22, y: level[s] + 4 }, g, LABEL[s]);
    });
    el("rect", { class: "frame", x: ML, y: top - 6, width: f.w, height: bottom - top + 12 }, svg);

    if (c.total === 0) {
      el("text", { class: "placeholder", x: ML + f.w / 2, y: f.height / 2 + 4,
                   "text-anchor": "middle" }, svg,
         kind === "offline" ? "The offline revision appears here when the night ends."
                            : "Waiting for the first epoch…");
      return c;
    }
    runs(night.n_epochs, function (i) { return stages[i] >= 0; }).forEach(function (r) {
      var d = "M" + x(r[0]).toFixed(1) + "," + yOf(stages[r[0]]);
      for (var i = r[0]; i < r[1]; i++) {
        if (i > r[0]) d += "V" + yOf(stages[i]);
        d += "H" + x(i + 1).toFixed(1);
      }
      el("path", { class: "hyp-line", d: d }, svg);
    });
    var rem = night.stages.indexOf("REM");
    runs(night.n_epochs, function (i) { return stages[i] === rem; }).forEach(function (r) {
      el("line", { class: "rem-bar", x1: x(r[0]), x2: x(r[1]), y1: level.REM, y2: level.REM }, svg);
    });
    if (f.scoring && kind === "causal") {
      var nx = x(night.n_epochs);
      el("line", { class: "now", x1: nx, x2: nx, y1: top - 6, y2: bottom + 6 }, svg);
    }
    return c;
  }

  function drawProbabilities(svg, night, ticks) {
    svg.replaceChildren();
    var f = frame(svg, night);
    var top = 2, bottom = f.height - 2, h = bottom - top;
    var stages = night.causal.stage, prob = night.causal.prob, scale = night.prob_scale;
    var x = function (i) { return f.x(i * f.epoch); };
    // stacked bottom-up as the hypnogram reads top-down: deep (N3), light (N2, N1), REM, W
    var stack = order(night).slice().reverse().map(function (s) { return night.stages.indexOf(s); });
    runs(night.n_epochs, function (i) { return stages[i] >= 0; }).forEach(function (r) {
      var base = [];
      for (var i = r[0]; i < r[1]; i++) base.push(0);
      stack.forEach(function (k) {
        var upper = "", lower = "";
        for (var i = r[0]; i < r[1]; i++) {
          var b = base[i - r[0]], t = b + prob[k][i] / scale;
          base[i - r[0]] = t;
          upper += (i === r[0] ? "M" : "L") + x(i).toFixed(1) + "," + (bottom - t * h).toFixed(1)
                 + "L" + x(i + 1).toFixed(1) + "," + (bottom - t * h).toFixed(1);
          lower = "L" + x(i + 1).toFixed(1) + "," + (bottom - b * h).toFixed(1)
                + "L" + x(i).toFixed(1) + "," + (bottom - b * h).toFixed(1) + lower;
        }
        el("path", { d: upper + lower + "Z", fill: COLOR[night.stages[k]], stroke: "none" }, svg);
      });
    });
    gridX(svg, f, ticks, top, bottom);
    el("rect", { class: "frame", x: ML, y: top, width: f.w, height: h }, svg);
    el("text", { x: ML - 6, y: top + 9, "text-anchor": "end" }, svg, "1");
    el("text", { x: ML - 6, y: bottom, "text-anchor": "end" }, svg, "0");
  }

  function niceRange(values, pad, step) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (lo === Infinity) return null;
    lo = Math.floor((lo - pad) / step) * step;
    hi = Math.ceil((hi + pad) / step) * step;
    if (hi <= lo) hi = lo + step;
    return [Math.max(0, lo), hi];
  }

  /* kind "hr": a line (heart rate, EEG amplitude); else bars from 0 (activity, channels) */
  function drawSeries(svg, night, ticks, values, kind, step) {
    svg.replaceChildren();
    var f = frame(svg, night);
    var top = 4, bottom = f.height - 4, h = bottom - top;
    var x = function (i) { return f.x(i * f.epoch); };
    gridX(svg, f, ticks, top, bottom);
    el("rect", { class: "frame", x: ML, y: top, width: f.w, height: h }, svg);
    var range = kind === "hr" ? niceRange(values, 2, step) : niceRange(values.concat([0]), 0, step);
    if (range === null) {
      el("text", { class: "placeholder", x: ML + f.w / 2, y: f.height / 2 + 4,
                   "text-anchor": "middle" }, svg, "no data yet");
      return;
    }
    var y = function (v) { return bottom - ((v - range[0]) / (range[1] - range[0])) * h; };
    el("text", { x: ML - 6, y: top + 9, "text-anchor": "end" }, svg, String(range[1]));
    el("text", { x: ML - 6, y: bottom, "text-anchor": "end" }, svg, String(range[0]));
    var valid = function (i) { return values[i] !== null; };
    runs(night.n_epochs, valid).forEach(function (r) {
      var d = "";
      if (kind === "hr") {
        for (var i = r[0]; i < r[1]; i++) {
          d += (i === r[0] ? "M" : "L") + ((x(i) + x(i + 1)) / 2).toFixed(1) + "," + y(values[i]).toFixed(1);
        }
        if (r[1] - r[0] === 1) d += "h1";
        el("path", { class: "hr-line", d: d }, svg);
      } else {
        d = "M" + x(r[0]).toFixed(1) + "," + bottom;
        for (var j = r[0]; j < r[1]; j++) {
          d += "V" + y(values[j]).toFixed(1) + "H" + x(j + 1).toFixed(1);
        }
        d += "V" + bottom + "Z";
        el("path", { class: "act-area", d: d }, svg);
      }
    });
  }

  function drawAxes(night, ticks) {
    var top = $("axis-top"), bottom = $("axis-bottom");
    top.replaceChildren();
    bottom.replaceChildren();
    var f = frame(top, night);
    el("text", { class: "axis-title", x: ML - 16, y: 13, "text-anchor": "end" }, top, "hours");
    for (var hr = 0; hr * 3600 <= f.span + 1e-6; hr += f.span > 14 * 3600 ? 2 : 1) {
      var xh = f.x(hr * 3600);
      el("line", { class: "frame", x1: xh, x2: xh, y1: 17, y2: 22 }, top);
      el("text", { x: xh, y: 13, "text-anchor": "middle" }, top, hr + " h");
    }
    var fb = frame(bottom, night);
    el("line", { class: "frame", x1: ML, x2: ML + fb.w, y1: 1, y2: 1 }, bottom);
    ticks.forEach(function (t) {
      var xt = fb.x(t);
      el("line", { class: "frame", x1: xt, x2: xt, y1: 1, y2: 6 }, bottom);
      el("text", { x: xt, y: 18, "text-anchor": "middle" }, bottom, clock(night.time_zone, fb.start + t * 1000));
    });
    el("text", { class: "axis-title", x: ML - 22, y: 18, "text-anchor": "end" }, bottom, "clock");
    el("text", { class: "axis-title", x: ML + fb.w, y: 34, "text-anchor": "end" }, bottom,
       "clock time (" + night.time_zone + (night.start_is_nominal ? ", replayed night" : "") + ")");
  }

  /* ---------------------------------------------------------------- summary, header */

  function drawSummary(night) {
    var box = $("summary"), s = night.summary;
    var set = function (id, text) { $(id).textContent = text; };
    var keys = ["tst-min", "se-pct", "sol-min", "waso-min", "rem-latency-min", "n-epochs",
                "light-pct", "deep-pct", "n1-pct", "n2-pct", "n3-pct", "rem-pct", "kind"];
    keys.forEach(function (k) { box.removeAttribute("data-" + k); });
    var bar = $("s-stages");
    bar.replaceChildren();
    if (!s) {
      box.setAttribute("data-available", "0");
      ["s-tst", "s-se", "s-sol", "s-waso", "s-reml"].forEach(function (id) { set(id, "–"); });
      $("summary-note").textContent = "Night summary: computed by the offline model when the night ends.";
      return;
    }
    box.setAttribute("data-available", "1");
    var pct = s.percent_of_tst;
    var attrs = { "tst-min": s.tst_min, "se-pct": s.se_pct, "sol-min": s.sol_min,
                  "waso-min": s.waso_min, "rem-latency-min": s.rem_latency_min,
                  "n-epochs": s.n_epochs, "light-pct": pct.light, "deep-pct": pct.deep,
                  "n1-pct": pct.N1, "n2-pct": pct.N2, "n3-pct": pct.N3, "rem-pct": pct.REM,
                  kind: s.kind };
    for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) box.setAttribute("data-" + k, String(attrs[k]));
    set("s-tst", minutesText(s.tst_min));
    $("s-se").innerHTML = s.se_pct === null ? "–" : s.se_pct.toFixed(1) + "<small>%</small>";
    set("s-sol", minutesText(s.sol_min));
    set("s-waso", minutesText(s.waso_min));
    set("s-reml", minutesText(s.rem_latency_min));
    // the sleep classes of the summary's stage set, lightest first, REM last
    var sleep = order(night).slice(2).concat(["REM"]).filter(function (st) { return st in pct; });
    sleep.forEach(function (st) {
      var share = pct[st] || 0;
      var seg = html("div", "", share >= 14 ? LABEL[st] + " " + Math.round(share) + "%"
                                        : share >= 6 ? Math.round(share) + "%" : "");
      seg.style.width = share + "%";
      seg.style.background = COLOR[st];
      seg.title = LABEL[st] + ": " + share.toFixed(1) + " % (" + Math.round(s.minutes[st] || 0) + " min)";
      bar.appendChild(seg);
    });
    $("summary-note").textContent = "Night summary of the " + s.kind + " hypnogram (" + s.model + "): "
      + s.n_epochs + " epochs, " + minutesText(s.tib_min) + " in bed, "
      + s.n_valid_epochs + " with input data.";
  }

  function drawHead(night) {
    var tz = night.time_zone, start = Date.parse(night.started_at);
    $("night-title").textContent = "Subject " + night.subject;
    var state = night.summary !== null ? "ended"
      : night.ended_at !== null ? "ended, offline revision pending" : "in progress";
    var meta = "session " + night.session + " · started " + dateText(tz, start) + ", "
      + clock(tz, start) + " (" + tz + ")";
    if (night.device) meta += " · " + night.device;
    meta += " · " + state + ", " + night.causal.n_scored + " epochs ("
      + minutesText(night.causal.n_scored * night.epoch_s / 60) + ")";
    $("night-meta").textContent = meta;
    var tabs = $("session-tabs");
    tabs.replaceChildren();
    if (night.sessions.length > 1) {
      night.sessions.forEach(function (s) {
        var b = html("button", s.session === night.session ? "on" : "", s.session + " · "
          + dateText(tz, Date.parse(s.started_at)));
        b.addEventListener("click", function () { select(night.subject, s.session); });
        tabs.appendChild(b);
      });
    }
  }

  function agreement(night) {
    var same = 0, both = 0;
    for (var i = 0; i < night.n_epochs; i++) {
      var a = night.causal.stage[i], b = night.offline.stage[i];
      if (a >= 0 && b >= 0) { both += 1; if (a === b) same += 1; }
    }
    return both ? Math.round((100 * same) / both) + " % of epochs as live" : "";
  }

  function drawLegend(night) {
    var box = $("legend");
    box.replaceChildren();
    order(night).forEach(function (s) {
      var key = html("span", "key");
      var sw = html("i", "sw");
      sw.style.background = COLOR[s];
      key.appendChild(sw);
      key.appendChild(document.createTextNode(LEGEND[s]));
      box.appendChild(key);
    });
    [["sw nodata", isEeg(night) ? "no EEG channel with data" : "no input data"],
     ["sw now-key", "latest epoch"]].forEach(function (k) {
      var key = html("span", "key");
      key.appendChild(html("i", k[0]));
      key.appendChild(document.createTextNode(k[1]));
      box.appendChild(key);
    });
  }

  function drawInputs(night, ticks) {
    var eeg = isEeg(night);
    $("cap-a-title").textContent = eeg ? "EEG amplitude" : "Heart rate";
    $("cap-a-sub").textContent = eeg ? "RMS per epoch over the channels with data, µV"
                                     : "mean per epoch, bpm";
    $("cap-b-title").textContent = eeg ? "EEG channels with data" : "Activity";
    $("cap-b-sub").textContent = eeg ? "per epoch, of " + night.channels.length + " ("
      + night.channels.join(", ") + ")" : "counts per epoch";
    drawSeries($("hr"), night, ticks, eeg ? night.eeg_rms_uv : night.hr_bpm, "hr", 10);
    drawSeries($("activity"), night, ticks, eeg ? night.eeg_channels : night.activity_counts,
               "activity", eeg ? 1 : 50);
  }

  function drawNight(night) {
    var main = $("night");
    main.setAttribute("data-subject", night.subject);
    main.setAttribute("data-session", night.session);
    main.setAttribute("data-version", String(night.version));
    main.setAttribute("data-stage-set", String(night.stages.length));
    drawLegend(night);
    drawHead(night);
    var ticks = hourTicks(frame($("hyp-causal"), night), night.time_zone);
    var cc = drawHypnogram($("hyp-causal"), night, "causal", ticks);
    var co = drawHypnogram($("hyp-offline"), night, "offline", ticks);
    $("cap-causal").textContent = cc.total ? cc.total + " epochs" : "";
    $("cap-offline").textContent = co.total ? co.total + " epochs, " + agreement(night) : "";
    drawProbabilities($("probs"), night, ticks);
    drawInputs(night, ticks);
    drawAxes(night, ticks);
    drawSummary(night);
  }

  /* ---------------------------------------------------------------- subjects */

  function drawSubjects(rows) {
    var list = $("subject-list");
    list.replaceChildren();
    $("subject-count").textContent = rows.length ? String(rows.length) : "";
    $("no-subjects").hidden = rows.length > 0;
    rows.forEach(function (r) {
      var li = html("li", r.subject === state.subject ? "selected" : "");
      li.setAttribute("data-subject", r.subject);
      var row1 = html("div", "row1");
      row1.appendChild(html("span", "sid", r.subject));
      row1.appendChild(html("span", "badge " + (r.ended ? "ended" : "live"), r.ended ? "ended" : "live"));
      var row2 = html("div", "row2");
      var pill = html("span", "pill" + (r.current_stage ? "" : " none"),
                      r.current_stage ? LABEL[r.current_stage] : "–");
      if (r.current_stage) pill.style.background = COLOR[r.current_stage];
      row2.appendChild(pill);
      row2.appendChild(html("span", "", r.n_causal + " epochs"));
      row2.appendChild(html("span", "", clock(Intl.DateTimeFormat().resolvedOptions().timeZone,
                                               Date.parse(r.last_update), true)));
      li.appendChild(row1);
      li.appendChild(row2);
      li.title = "session " + r.session + (r.has_summary ? " · summary ready" : "");
      li.addEventListener("click", function () { select(r.subject, null); });
      list.appendChild(li);
    });
  }

  function select(subject, session) {
    state.subject = subject;
    state.session = session;
    state.version = null;
    var q = new URLSearchParams();
    q.set("subject", subject);
    if (session) q.set("session", session);
    history.replaceState(null, "", "?" + q.toString());
    refresh();
  }

  /* ---------------------------------------------------------------- polling */

  function status(text, bad) {
    var s = $("status");
    s.className = "status" + (bad ? " bad" : "");
    s.replaceChildren(html("span", "dot"), document.createTextNode(text));
  }

  async function getJSON(url) {
    var resp = await fetch(url, { cache: "no-store" });
    var body = await resp.json();
    return { ok: resp.ok, status: resp.status, body: body };
  }

  async function refresh() {
    clearTimeout(state.timer);
    try {
      var subjects = await getJSON("/live/api/subjects");
      state.subjects = subjects.body.subjects;
      if (!state.subject && state.subjects.length) state.subject = state.subjects[0].subject;
      drawSubjects(state.subjects);
      if (state.subject) {
        var q = "subject=" + encodeURIComponent(state.subject);
        if (state.session) q += "&session=" + encodeURIComponent(state.session);
        if (state.version !== null) q += "&known=" + state.version;
        var r = await getJSON("/live/api/night?" + q);
        if (r.ok && !r.body.unchanged) {
          state.night = r.body;
          state.version = r.body.version;
          drawNight(r.body);
        } else if (!r.ok) {
          state.night = null;
          state.version = null;
          $("night-title").textContent = "Subject " + state.subject;
          $("night-meta").textContent = "Waiting for data: " + r.body.error;
        }
      }
      state.updates += 1;
      document.body.dataset.updates = String(state.updates);
      if (state.night || !state.subject) document.body.dataset.ready = "1";
      status("updated " + clock(Intl.DateTimeFormat().resolvedOptions().timeZone, Date.now(), true)
             + " · " + state.subjects.length + " subject" + (state.subjects.length === 1 ? "" : "s"));
    } catch (err) {
      status("connection lost, retrying… (" + err.message + ")", true);
    }
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  window.addEventListener("resize", function () { if (state.night) drawNight(state.night); });
  refresh();
})();
