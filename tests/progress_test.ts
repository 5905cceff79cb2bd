/** Progress display: a bar redrawn in place on a terminal, periodic plain lines otherwise. */

import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { progressDisplay, progressLine } from "../src/cli/progress.ts";
import { ProgressCounter, setProgressDisplay, startProgress } from "../src/progress.ts";

function fakeOut(tty: boolean) {
  let text = "";
  return {
    line: (s: string) => {
      text += s + "\n";
    },
    out: {
      isTerminal: () => tty,
      writeSync(p: Uint8Array) {
        text += new TextDecoder().decode(p);
        return p.length;
      },
    },
    text: () => text,
  };
}

Deno.test("progress line: bytes, percentage, rate and ETA; done shows the time taken", () => {
  const mid = progressLine("restore a.db", 512 * 1024, 1024 * 1024, 1000, true);
  assertEquals(
    mid,
    "restore a.db [############------------] 50% 512.0 KiB / 1.0 MiB 512.0 KiB/s ETA 1s",
  );
  const done = progressLine("restore a.db", 3 << 20, 3 << 20, 90_000, false);
  assertEquals(done, "restore a.db 100% 3.0 MiB / 3.0 MiB 34.1 KiB/s in 1m30s");
  assertEquals(progressLine("verify", 100, 0, 2000, true), "verify 100 B 50 B/s");
});

Deno.test("progress on a terminal: one line redrawn in place, ended by a newline", () => {
  const o = fakeOut(true);
  let t = 0;
  const d = progressDisplay("upload", { out: o.out, now: () => t });
  for (let i = 1; i <= 10; i++) {
    t += 150;
    d.report(i * 100, 1000);
  }
  d.finish();
  const text = o.text();
  assert(!text.slice(0, -1).includes("\n"), "only the final newline");
  assertEquals(text.split("\r").length - 1, 11); // 10 redraws + the final one
  assertMatch(text, /\rupload \[#{24}\] 100% 1000 B \/ 1000 B .* in 2s/);
  assert(text.endsWith("in 2s\u001b[K\n"), JSON.stringify(text.slice(-20)));
});

Deno.test("progress elsewhere: a plain line per interval and a final one; a failure adds none", () => {
  const o = fakeOut(false);
  let t = 0;
  const d = progressDisplay("restore x.db", {
    out: o.out,
    line: o.line,
    now: () => t,
    intervalMs: 5000,
  });
  const c = new ProgressCounter(10_000, d.report);
  for (let i = 0; i < 12; i++) {
    t += 1000;
    c.add(500);
  }
  d.finish(true);
  const lines = o.text().trim().split("\n");
  assertEquals(lines.length, 3, o.text()); // at 5 s, at 10 s, and the end
  assertMatch(lines[0], /^restore x\.db 25% 2\.4 KiB \/ 9\.8 KiB 500 B\/s ETA 15s$/);
  assertMatch(lines[2], /^restore x\.db 100% 9\.8 KiB \/ 9\.8 KiB .* in 12s$/);

  const f = fakeOut(false);
  const failed = progressDisplay("x", { out: f.out, line: f.line, now: () => 0 });
  failed.report(1, 2);
  failed.finish(false);
  assertEquals(f.text(), "");
});

Deno.test("library code reports through startProgress; nothing is shown until a display is set", () => {
  assertEquals(typeof startProgress("quiet").report, "function");
  const o = fakeOut(false);
  setProgressDisplay((label) => progressDisplay(label, { out: o.out, line: o.line, now: () => 0 }));
  try {
    const task = startProgress("upload snapshot a.db");
    task.report(5, 10);
    task.finish(true);
  } finally {
    setProgressDisplay(null);
  }
  assertMatch(o.text(), /^upload snapshot a\.db 100% 10 B \/ 10 B/);
});
