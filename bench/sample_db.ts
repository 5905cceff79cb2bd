/** Builds SQLite databases of text rows for benchmarks (through SQLite, never by hand). */

import { DatabaseSync } from "node:sqlite";

/** Creates (or reuses) a database of about `megabytes` MiB of text rows at `path`. */
export function makeTextDatabase(path: string, megabytes: number): void {
  try {
    if (Deno.statSync(path).size >= megabytes * 1024 * 1024) return;
  } catch { /* create it */ }
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=4096;");
  db.exec(
    "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, name TEXT, email TEXT, note TEXT, n INTEGER)",
  );
  const ins = db.prepare("INSERT INTO rows (name, email, note, n) VALUES (?, ?, ?, ?)");
  const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"];
  let i = 0;
  while (Deno.statSync(path).size < megabytes * 1024 * 1024) {
    db.exec("BEGIN");
    for (let k = 0; k < 20000; k++, i++) {
      const w = words[i % words.length];
      ins.run(
        `${w} ${i}`,
        `${w}.${i}@example.com`,
        `${w} `.repeat(1 + (i % 13)) + i.toString(36),
        i * 7,
      );
    }
    db.exec("COMMIT");
  }
  db.close();
}

/** Reads up to `count` whole pages of a database file that no connection has open. */
export function readPages(path: string, count: number, pageSize = 4096): Uint8Array[] {
  const bytes = Deno.readFileSync(path);
  const pages: Uint8Array[] = [];
  for (let p = 1; p * pageSize <= bytes.length && pages.length < count; p++) {
    pages.push(bytes.slice((p - 1) * pageSize, p * pageSize));
  }
  return pages;
}
