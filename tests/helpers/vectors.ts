/** Paths and expected contents of the shared test vectors (../shared/vectors). */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Project root (this file lives in tests/helpers/). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const VECTORS_DIR = join(PROJECT_ROOT, "../shared/vectors");

export function vectorPath(...parts: string[]): string {
  return join(VECTORS_DIR, ...parts);
}

export async function readVector(...parts: string[]): Promise<Uint8Array> {
  return await Deno.readFile(vectorPath(...parts));
}

export function filled(byte: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(byte);
}

/** The incompressible page of f_random4096: LCG x=x*1103515245+12345 from x=1, byte=(x>>16)&0xff. */
export function lcgPage(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}
