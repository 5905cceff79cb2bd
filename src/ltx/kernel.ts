/** The page kernel of this thread, in WebAssembly (one instance shared by every caller). */

import { makePageKernel } from "./page_kernel.ts";
import { PAGE_KERNEL_WASM } from "./page_kernel_wasm.ts";

export const pageKernel = makePageKernel(PAGE_KERNEL_WASM);
