/** The WebAssembly page kernel in the source tree is the one its .wat builds. */

import { assertEquals } from "./helpers/assert.ts";
import { pageKernelModule } from "../compile/page_kernel_wasm.ts";

Deno.test("src/ltx/page_kernel_wasm.ts is built from src/ltx/page_kernel.wat as it is now", async () => {
  const built = await pageKernelModule();
  const have = await Deno.readTextFile(new URL("../src/ltx/page_kernel_wasm.ts", import.meta.url));
  assertEquals(have, built, "run: deno run -A compile/page_kernel_wasm.ts");
});
