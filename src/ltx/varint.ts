/** Unsigned LEB128 varints for the page index (values below 2^53). */

/** Writes `v` at `out[pos..]`; returns the new position. */
export function putUvarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    out[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[pos++] = v;
  return pos;
}

/** Reads a varint at `buf[pos..end)`: [value, newPos], or null when truncated or too long. */
export function getUvarint(buf: Uint8Array, pos: number, end: number): [number, number] | null {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= end) return null;
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, pos];
    mul *= 0x80;
  }
  return null;
}
