/**
 * The web page (issue 20) in a real headless browser (Debian's Chromium):
 * it loads with no console error, shows the database's state and a timeline
 * whose restore points are `strata timeline -json`'s, and the command shown
 * for a clicked moment restores exactly that moment's state. The replica is
 * age-encrypted, so no key may reach the page or its data. Plus the
 * timeline's points against the restore planner on random replicas.
 */

import { join } from "node:path";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { buildTimeline, pointAt } from "../src/restore/timeline.ts";
import { planRestore } from "../src/restore/plan.ts";
import type { ReplicaClient, ReplicaFile } from "../src/storage/mod.ts";
import { replicaUrlOf } from "../src/server/web.ts";
import { parseReplicaUrl } from "../src/config/replica_url.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { digestOf, readMarks, Replicating, runWriter, strata } from "./helpers/strata.ts";
import { freePorts } from "./helpers/test_tools.ts";
import { waitFor } from "./helpers/ops.ts";
import { Browser } from "./helpers/chromium.ts";

Deno.test("web assets: src/server/web_assets.ts is built from src/server/web/ and npm's uPlot as they are", async () => {
  const { webAssetsModule } = await import("../compile/web_assets.ts");
  const have = await Deno.readTextFile(new URL("../src/server/web_assets.ts", import.meta.url));
  assert(have === await webAssetsModule(), "stale: run deno task assets");
});

Deno.test("timeline: a point is listed exactly when the planner can restore it; -timestamp flags match", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let round = 0; round < 200; round++) {
    const files: ReplicaFile[] = [];
    const n = 5 + Math.floor(rand() * 40);
    let t = Date.UTC(2026, 11, 1);
    for (let i = 0; i < n; i++) {
      const level = [0, 0, 0, 1, 2, 9][Math.floor(rand() * 6)];
      const max = BigInt(1 + Math.floor(rand() * 60));
      const min = level === 9 || rand() < 0.1 ? 1n : max - BigInt(Math.floor(rand() * 5));
      t += Math.floor(rand() * 3) * 1000; // equal times happen
      files.push({
        level,
        minTXID: min < 1n ? 1n : min,
        maxTXID: max,
        size: 10,
        createdAt: new Date(t),
      });
    }
    const tl = buildTimeline(files);
    const listed = new Set(tl.points.map((p) => p.txid));
    for (const f of files) {
      let plannable = true;
      try {
        planRestore(files, { txid: f.maxTXID }, "r");
      } catch {
        plannable = false;
      }
      assertEquals(listed.has(f.maxTXID), plannable, `round ${round}, TXID ${f.maxTXID}`);
    }
    for (const p of tl.points) {
      let byTime: bigint | null = null;
      try {
        byTime = planRestore(files, { timestamp: p.time }, "r").txid;
      } catch { /* the newest file at that time is not reachable */ }
      assertEquals(p.byTimestamp, byTime === p.txid, `round ${round}, TXID ${p.txid} by time`);
    }
  }
});

Deno.test("web page in headless Chromium: state, a timeline equal to strata timeline -json, and a clicked moment's command restores it exactly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "strata-web-" });
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  let browser: Browser | null = null;
  let s: Replicating | null = null;
  try {
    const db = join(dir, "app.db");
    const rep = join(dir, "replica");
    const marks = join(dir, "marks.jsonl");
    const [port] = freePorts(1);
    const cfg = join(dir, "strata.yml");
    await Deno.writeTextFile(
      cfg,
      `addr: 127.0.0.1:${port}\nlevels:\n  - interval: 2s\n` +
        `dbs:\n  - path: ${db}\n    replicas:\n      - url: file://${rep}\n` +
        `        sync-interval: 100ms\n        age:\n          recipients: [${recipient}]\n` +
        `          identities: [${identity}]\n`,
    );
    await runWriter(db, "more", 1, marks);
    s = new Replicating(["-config", cfg]);
    await s.waitForLog();
    const before = (await readMarks(marks)).length;
    await runWriter(db, "main", 2, marks);
    const during = (await readMarks(marks)).slice(before);
    // a branch of the replica, so the timeline marks one
    const m = during[Math.floor(during.length / 2)];
    const base = `http://127.0.0.1:${port}`;
    const status = async () => await (await fetch(`${base}/api/status`)).json();
    await waitFor("the replica to catch up", async () => {
      const st = await status();
      const d = st.dbs[0];
      return d.replicas[0].txid === d.local.txid && d.replicas[0].lagSeconds === 0;
    }, 60);
    let r = await strata([
      "clone",
      "-config",
      cfg,
      "-timestamp",
      new Date(m.time).toISOString(),
      `file://${rep}`,
      `file://${join(dir, "branch")}`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    await new Promise((res) => setTimeout(res, 3_000)); // an L1 compaction after the writes

    // read-only, no keys anywhere, a content security policy
    const post = await fetch(`${base}/api/status`, { method: "POST" });
    await post.body?.cancel();
    assertEquals(post.status, 405);
    const miss = await fetch(`${base}/nothing`);
    await miss.body?.cancel();
    assertEquals(miss.status, 404);
    const home = await fetch(`${base}/`);
    assertMatch(home.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    await home.body?.cancel();
    for (const path of ["/api/status", `/api/timeline?db=${encodeURIComponent(db)}`, "/"]) {
      const body = await (await fetch(base + path)).text();
      assert(!body.includes(identity) && !body.includes(identity.slice(20)), `${path} holds a key`);
    }

    // the Grafana dashboard in docs/ asks only for metrics this process serves
    const exposed = await (await fetch(`${base}/metrics`)).text();
    const dashboard = await Deno.readTextFile(
      new URL("../docs/grafana-dashboard.json", import.meta.url),
    );
    const exprs = (JSON.parse(dashboard).panels as { targets: { expr: string }[] }[])
      .flatMap((p) => p.targets.map((t) => t.expr));
    assert(exprs.length >= 10, "a dashboard with panels");
    for (const e of exprs) {
      for (const name of e.match(/\b(litestream|strata)_[a-z_]+/g) ?? []) {
        const base = name.replace(/_bucket$/, "");
        assert(exposed.includes(`# TYPE ${base} `), `${name} (in "${e}") is not served`);
      }
    }

    browser = await Browser.launch();
    const page = await browser.open(`${base}/`);
    const dbJs = JSON.stringify(db);
    await page.until(
      `strataPage.timelines[${dbJs}] && strataPage.plots[${dbJs}] && document.body.dataset.loaded`,
      "the page to load its timeline",
    );
    const state = await page.evaluate<string>(
      `document.querySelector("section.db .badge").textContent`,
    );
    assertEquals(state, "replicating");
    const local = await page.evaluate<string>(
      `document.querySelector("section.db .facts code").textContent`,
    );
    assertEquals(local, (await status()).dbs[0].local.txid);

    // the page's restore points are the CLI's (listing the store itself, reading the branch
    // manifests with the keys); by URL, without them, the branch cannot be read and it says so
    const byUrl = await strata(["timeline", "-json", `file://${rep}`]);
    assertEquals(byUrl.code, 0, byUrl.stderr);
    assertMatch(byUrl.stderr, /branches of .* cannot be read: .*age-encrypted/);
    const cli = await strata(["timeline", "-json", "-config", cfg, db]);
    assertEquals(cli.code, 0, cli.stderr);
    const want = JSON.parse(cli.stdout)[0];
    const shown = await page.evaluate<{ points: unknown[]; branches: { txid: string }[] }>(
      `strataPage.timelines[${dbJs}]`,
    );
    assert(want.points.length >= during.length, "a point at least per quiet moment");
    assertEquals(shown.points, want.points);
    assertEquals(
      shown.branches.map((b) => b.txid),
      want.branches.map((b: { txid: string }) => b.txid),
    );
    assertEquals(want.branches.length, 1, "the branch is marked");
    const text = await strata(["timeline", "-config", cfg, db]);
    assertEquals(text.code, 0, text.stderr);
    assertMatch(
      text.stdout,
      new RegExp(`restorable from ${want.oldest.time} .* to ${want.newest.time}`),
    );
    assertMatch(text.stdout, /every L0 file \(each sync\) +\d+ /);
    assertMatch(text.stdout, new RegExp(`branch \\S*branch at TXID ${want.branches[0].txid}`));
    const rows = await page.evaluate<number>(
      `document.querySelectorAll("section.db table.points tr[data-txid]").length`,
    );
    assertEquals(rows, want.points.length);

    // click the chart at a quiet moment: the command shown restores that moment's state
    const target = during[Math.floor(during.length / 3)];
    const at = await page.evaluate<{ x: number; y: number }>(`(() => {
      const u = strataPage.plots[${dbJs}];
      u.over.scrollIntoView({ block: "center" });
      const r = u.over.getBoundingClientRect();
      return { x: r.left + u.valToPos(${target.time / 1000}, "x"), y: r.top + r.height / 2 };
    })()`);
    await page.click(at.x, at.y);
    await page.until(`document.querySelector("section.db .pick pre.command")`, "the command");
    const command = await page.evaluate<string>(
      `document.querySelector("section.db .pick pre.command").textContent`,
    );
    const restoreLine = command.split("\n")[0];
    assertMatch(restoreLine, /^strata restore (-timestamp|-txid) \S+ -o \S+ -config \S+ \S+$/);
    const tl = buildTimeline(
      want.points.map((p: { txid: string; time: string; level: number }) => ({
        level: p.level,
        minTXID: 1n,
        maxTXID: BigInt(`0x${p.txid}`),
        size: 0,
        createdAt: new Date(p.time),
      })),
    );
    const expected = pointAt(tl, new Date(target.time))!;
    const shownTxid = await page.evaluate<string>(
      `document.querySelector("section.db .pick code.txid").textContent`,
    );
    assertEquals(BigInt(`0x${shownTxid}`), expected.txid, "the point at or before the click");
    // run it as shown, the output path moved into the test's directory
    const args = restoreLine.split(" ").slice(1);
    const o = args.indexOf("-o");
    args[o + 1] = join(dir, args[o + 1]);
    r = await strata([...args.slice(0, 1), "-no-progress", ...args.slice(1)]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals((await digestOf(args[o + 1])).digest, target.digest, "the clicked moment's state");
    assertMatch(command.split("\n")[1] ?? "", /^strata clone (-timestamp|-txid) \S+ -config /);

    // the screenshot (docs/web-page.png is one, taken with STRATA_WEB_SCREENSHOT=docs/web-page.png)
    const png = await page.screenshot();
    assertEquals([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
    assert(png.length > 20_000, `a page, not a blank (${png.length} bytes)`);
    const keep = Deno.env.get("STRATA_WEB_SCREENSHOT");
    if (keep) await Deno.writeFile(keep, png);
    assertEquals(page.errors, [], "no console errors, exceptions or failed loads");
  } finally {
    await browser?.close();
    if (s) {
      const out = await s.stop();
      assertEquals(out.code, 0, out.stderr);
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("web page: a replica's URL for the commands only where its location reads back as the same replica", () => {
  const c = (type: string, location: string) => ({ type, location }) as unknown as ReplicaClient;
  const cases: [ReplicaClient, string | null][] = [
    [c("file", "/srv/backups/app"), "file:///srv/backups/app"],
    [c("file", "/srv/odd#name"), null],
    [
      c("s3", "s3://bucket/app (http://127.0.0.1:9000)"),
      "s3://bucket/app?endpoint=http://127.0.0.1:9000",
    ],
    [c("s3", "s3://bucket/app"), "s3://bucket/app"],
    [c("sftp", "sftp://me@host:2222/srv/app"), "sftp://me@host:2222/srv/app"],
    [c("sftp", "sftp://me@host/~/app"), null],
    [c("webdav", "https://dav.example/app"), null],
    [c("nats", "nats://127.0.0.1:4222/backups/app"), null],
  ];
  for (const [client, want] of cases) {
    const url = replicaUrlOf(client);
    assertEquals(url, want, client.location);
    if (url) parseReplicaUrl(url); // strata takes it back
  }
  assertEquals(
    (parseReplicaUrl("file:///srv/backups/app") as { path: string }).path,
    "/srv/backups/app",
  );
});
