/** The shared idle clock: every waiting function runs once at the next beat; cancelled ones never. */

import { IdleClock } from "../src/replicate/idle_clock.ts";
import { assertEquals } from "./helpers/assert.ts";

/** Polls every 2 ms (a beat is 200 ms apart: each beat is seen on its own). */
async function until(cond: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 2));
  }
}

Deno.test("idle clock: one beat runs every waiting function once, a cancelled one never; no timer left", async () => {
  const clock = new IdleClock(200);
  const ran: string[] = [];
  clock.schedule(() => ran.push("a"));
  const cancelB = clock.schedule(() => ran.push("b"));
  clock.schedule(() => {
    ran.push("c");
    clock.schedule(() => ran.push("c again")); // waits for the next beat
  });
  cancelB();
  await until(() => ran.length >= 2);
  assertEquals(ran, ["a", "c"]);
  await until(() => ran.length >= 3);
  assertEquals(ran, ["a", "c", "c again"]);
  // everything cancelled: the timer goes too (the test's sanitizer fails on a leaked timer)
  const cancel = clock.schedule(() => ran.push("never"));
  cancel();
  await new Promise((r) => setTimeout(r, 300));
  assertEquals(ran.length, 3);
});
