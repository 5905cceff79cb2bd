// strata's web page: state, lag and the restore-point timeline of every
// database this `strata replicate` runs. Reads /api/status every 5 s and a
// database's /api/timeline when it is shown or refreshed; writes nothing.
"use strict";

(() => {
  const LANE_COLORS = ["#0969da", "#8250df", "#bf3989", "#9a6700", "#1a7f37", "#cf222e"];
  const root = document.getElementById("dbs");
  const meta = document.getElementById("meta");
  /** Per database: its card's parts, charts and the timeline last drawn. */
  const cards = new Map();
  /** For tests and the curious: the timelines as drawn, and their charts. */
  const page = { timelines: {}, plots: {} };
  globalThis.strataPage = page;

  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  };
  const bytes = (n) =>
    n < 1024
      ? `${n} B`
      : n < 1 << 20
      ? `${(n / 1024).toFixed(1)} KiB`
      : n < 1 << 30
      ? `${(n / (1 << 20)).toFixed(1)} MiB`
      : `${(n / (1 << 30)).toFixed(2)} GiB`;
  const when = (iso) => (iso ? new Date(iso).toISOString().replace(".000Z", "Z") : "—");
  const levelName = (l) => (l === 9 ? "snapshots" : `L${l}`);
  const granularity = (l) =>
    l === 0 ? "every L0 file (each sync)" : l === 9 ? "snapshots only" : `L${l} boundaries`;
  const quote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

  function dbState(d) {
    if (d.replicas.some((r) => r.state === "diverged")) return "diverged";
    if (d.state === "replicating" && d.replicas.some((r) => r.state === "unreachable")) {
      return "replica unreachable";
    }
    return d.state;
  }

  function card(d) {
    let c = cards.get(d.db);
    if (c) return c;
    const badge = el("span", { class: "badge" });
    const facts = el("div", { class: "facts" });
    const error = el("div", { class: "error" });
    const replicas = el("table", { class: "replicas" });
    const lagChart = el("div", { class: "chart lag" });
    const select = el("select", { "aria-label": "replica" });
    const legend = el("div", { class: "legend" });
    const timeline = el("div", { class: "chart timeline" });
    const pick = el("div", { class: "pick", hidden: "" });
    const points = el("table", { class: "points" });
    const section = el(
      "section",
      { class: "db", "data-db": d.db },
      el("h2", {}, el("span", { class: "name", text: d.name }), badge),
      el("div", { class: "path", text: d.db }),
      facts,
      error,
      el("h3", { text: "Replicas" }),
      replicas,
      el("h3", { text: "Lag, last hour (seconds)" }),
      lagChart,
      el("h3", {}, "Restore points ", select),
      legend,
      timeline,
      el("div", { class: "hint", text: "Click a moment to get the command that restores it." }),
      pick,
      el("details", {}, el("summary", { text: "Every restore point" }), points),
    );
    root.append(section);
    c = {
      section,
      badge,
      facts,
      error,
      replicas,
      lagChart,
      lagPlot: null,
      select,
      legend,
      timeline,
      plot: null,
      pick,
      points,
      data: null,
      loadedAt: 0,
      replica: 0,
    };
    select.addEventListener("change", () => {
      c.replica = Number(select.value);
      c.loadedAt = 0;
      loadTimeline(d.db, c);
    });
    cards.set(d.db, c);
    return c;
  }

  function renderDb(d) {
    const c = card(d);
    const state = dbState(d);
    c.badge.textContent = state;
    c.badge.className = `badge ${state.replace(/ .*/, "") === "replica" ? "unreachable" : state}`;
    c.section.dataset.state = state;
    const fact = (label, value) => el("div", {}, el("span", { text: label }), value);
    c.facts.replaceChildren(
      fact("local TXID", el("code", { text: d.local?.txid ?? "—" })),
      fact("checksum", el("code", { text: d.local?.checksum ?? "—" })),
      ...d.replicas.map((r) =>
        fact(`${r.replica} TXID`, el("code", { text: r.txid ?? "not listed yet" }))
      ),
    );
    const errors = [d.error, ...d.replicas.map((r) => r.diverged ?? r.notRestorable ?? r.error)]
      .filter((e) => e);
    c.error.textContent = errors.length > 0 ? `last error: ${errors.join("\n")}` : "";
    c.replicas.replaceChildren(
      el(
        "tr",
        {},
        ...["replica", "state", "TXID", "behind", "lag", "last sync", "files per level", "requests"]
          .map((h) => el("th", { text: h })),
      ),
      ...d.replicas.map((r) =>
        el(
          "tr",
          {},
          el("td", {}, el("code", { text: r.replica })),
          el("td", {}, el("span", { class: `badge ${r.state.replace(" ", "-")}`, text: r.state })),
          el("td", {}, el("code", { text: r.txid ?? "—" })),
          el("td", { text: r.behindTXIDs === null ? "—" : `${r.behindTXIDs} TXIDs` }),
          el("td", { text: `${r.lagSeconds.toFixed(1)} s` }),
          el("td", { text: when(r.lastSyncAt) }),
          el(
            "td",
            { class: "levels" },
            r.levels.length === 0
              ? "—"
              : r.levels.map((l) => `${levelName(l.level)}: ${l.files} (${bytes(l.bytes)})`).join(
                ", ",
              ),
          ),
          el("td", { text: `${r.ops.requests} (${r.ops.errors} errors)` }),
        )
      ),
    );
    if (c.select.options.length !== d.replicas.length) {
      c.select.replaceChildren(
        ...d.replicas.map((r, k) => el("option", { value: String(k), text: r.replica })),
      );
    }
    drawLag(c, d);
    if (Date.now() - c.loadedAt > 15_000) loadTimeline(d.db, c);
  }

  function drawLag(c, d) {
    const xs = [...new Set(d.replicas.flatMap((r) => r.lag.map((p) => p[0])))].sort((a, b) =>
      a - b
    );
    const data = [
      xs,
      ...d.replicas.map((r) => {
        const m = new Map(r.lag);
        return xs.map((x) => (m.has(x) ? m.get(x) : null));
      }),
    ];
    if (!globalThis.uPlot) return;
    if (c.lagPlot && c.lagPlot.series.length === d.replicas.length + 1) {
      c.lagPlot.setData(data);
      return;
    }
    c.lagPlot?.destroy();
    c.lagPlot = new uPlot(
      {
        width: Math.max(300, c.section.clientWidth - 40),
        height: 160,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] } },
        series: [
          {},
          ...d.replicas.map((r, k) => ({
            label: r.replica,
            stroke: LANE_COLORS[k % LANE_COLORS.length],
            width: 2,
            spanGaps: true,
          })),
        ],
        axes: [{}, { size: 64 }],
      },
      data,
      c.lagChart,
    );
  }

  async function loadTimeline(db, c) {
    c.loadedAt = Date.now();
    const k = c.replica;
    const res = await fetch(`/api/timeline?db=${encodeURIComponent(db)}&replica=${k}`);
    const t = await res.json();
    if (!res.ok) {
      c.legend.textContent = t.error ?? `timeline: HTTP ${res.status}`;
      return;
    }
    c.data = t;
    page.timelines[db] = t;
    drawTimeline(c, t);
  }

  function drawTimeline(c, t) {
    const levels = [...new Set(t.points.map((p) => p.level))].sort((a, b) => b - a);
    const lane = new Map(levels.map((l, i) => [l, i]));
    c.legend.replaceChildren(
      ...(t.points.length === 0 ? ["nothing to restore yet (no snapshot)"] : [
        "restorable from ",
        el("b", { text: when(t.oldest.time) }),
        " to ",
        el("b", { text: when(t.newest.time) }),
        ` (${t.points.length} points). `,
        ...t.windows.map((w) => `${granularity(w.level)}: ${when(w.from)} … ${when(w.to)}. `),
        t.branches.length > 0 ? `${t.branches.length} branches (dashed lines).` : "",
      ]),
    );
    c.points.replaceChildren(
      el("tr", {}, ...["TXID", "time", "granularity", "by"].map((h) => el("th", { text: h }))),
      ...t.points.map((p) =>
        el(
          "tr",
          { "data-txid": p.txid, "data-time": p.time, "data-level": String(p.level) },
          el("td", {}, el("code", { text: p.txid })),
          el("td", { text: p.time }),
          el("td", { text: levelName(p.level) }),
          el("td", { text: p.byTimestamp ? "-timestamp" : "-txid" }),
        )
      ),
    );
    if (!globalThis.uPlot || t.points.length === 0) return;
    const xs = t.points.map((p) => Date.parse(p.time) / 1000);
    const data = [
      xs,
      ...levels.map((l) => t.points.map((p) => (p.level === l ? lane.get(l) : null))),
    ];
    c.plot?.destroy();
    const branches = t.branches.map((b) => Date.parse(b.time) / 1000);
    c.plot = new uPlot(
      {
        width: Math.max(300, c.section.clientWidth - 40),
        height: 60 + 28 * levels.length,
        scales: {
          x: {
            time: true,
            range: (_u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]),
          },
          y: { range: [-0.6, levels.length - 0.4] },
        },
        series: [
          {},
          ...levels.map((l, i) => ({
            label: granularity(l),
            stroke: LANE_COLORS[i % LANE_COLORS.length],
            paths: () => null,
            points: { show: true, size: 7, fill: LANE_COLORS[i % LANE_COLORS.length] },
          })),
        ],
        axes: [
          {},
          {
            size: 90,
            splits: () => levels.map((_l, i) => i),
            values: (_u, vals) => vals.map((v) => levelName(levels[v] ?? 0)),
          },
        ],
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { show: false } },
        hooks: {
          draw: [(u) => {
            const ctx = u.ctx;
            ctx.save();
            ctx.setLineDash([4, 4]);
            ctx.strokeStyle = "#cf222e";
            for (const b of branches) {
              const x = u.valToPos(b, "x", true);
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
            }
            if (c.chosen) {
              ctx.setLineDash([]);
              ctx.strokeStyle = "#1d2125";
              const x = u.valToPos(Date.parse(c.chosen.time) / 1000, "x", true);
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          }],
        },
      },
      data,
      c.timeline,
    );
    page.plots[c.section.dataset.db] = c.plot;
    c.plot.over.addEventListener("click", (e) => {
      choose(c, new Date(c.plot.posToVal(e.offsetX, "x") * 1000));
    });
  }

  /** The point a restore at `time` gives (the newest one at or before it), and its commands. */
  function choose(c, time) {
    const t = c.data;
    let best = null;
    for (const p of t.points) {
      if (Date.parse(p.time) <= time.getTime() && (!best || p.txid > best.txid)) best = p;
    }
    c.pick.hidden = false;
    if (!best) {
      c.chosen = null;
      c.pick.replaceChildren(
        `Nothing can be restored to ${when(time.toISOString())}: the oldest point is ${
          when(t.oldest.time)
        }.`,
      );
      c.plot.redraw();
      return;
    }
    c.chosen = best;
    const name = t.db.split("/").pop().replace(/\.[^.]*$/, "");
    const stamp = best.time.replace(/[-:]/g, "").replace(/\.\d+/, "");
    const at = best.byTimestamp && !t.commands.byTxid
      ? ["-timestamp", best.time]
      : ["-txid", best.txid];
    const lines = [];
    // before age was switched on the files are plaintext: restored by URL, without the keys
    const plain = t.commands.unencryptedThrough && best.txid <= t.commands.unencryptedThrough;
    const target = plain ? t.commands.plainRestore : t.commands.restore;
    if (target) {
      lines.push(
        ["strata", "restore", ...at, "-o", `${name}-${stamp}.db`, ...target].map(quote).join(" "),
      );
    }
    if (t.commands.cloneSource) {
      lines.push(
        ["strata", "clone", ...at, ...t.commands.cloneSource, "BRANCH_REPLICA_URL"].map(quote)
          .join(" "),
      );
    }
    const cmd = el("pre", { class: "command", text: lines.join("\n") });
    const copy = el("button", { type: "button", text: "copy" });
    copy.addEventListener("click", () => navigator.clipboard?.writeText(lines.join("\n")));
    c.pick.replaceChildren(
      el(
        "div",
        {},
        `${when(time.toISOString())} restores TXID `,
        el("code", { class: "txid", text: best.txid }),
        `, the state as of ${when(best.time)} (${granularity(best.level)}).`,
      ),
      cmd,
      copy,
    );
    c.pick.dataset.txid = best.txid;
    c.plot.redraw();
  }

  async function refresh() {
    try {
      const res = await fetch("/api/status");
      const s = await res.json();
      meta.textContent = `version ${s.version} · up since ${when(s.startedAt)} · updated ${
        when(s.now)
      }`;
      for (const d of s.dbs) renderDb(d);
      for (const [db, c] of cards) {
        if (!s.dbs.some((d) => d.db === db)) {
          c.section.remove();
          cards.delete(db);
        }
      }
      if (s.dbs.length === 0) root.textContent = "No database is being replicated.";
      document.body.dataset.loaded = "true";
    } catch (e) {
      meta.textContent = `cannot reach strata: ${e.message}`;
    }
  }

  refresh();
  setInterval(refresh, 5000);
})();
