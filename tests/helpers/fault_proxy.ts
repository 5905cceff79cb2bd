/**
 * A fault-injecting HTTP proxy for tests: listens on 127.0.0.1 (free port),
 * forwards each request to an upstream server on its own connection, and
 * injects faults chosen per request: connection resets, 500s, 503 SlowDown,
 * stalls, truncated responses and truncated request bodies.
 *
 * Every forwarded request is sent with `Connection: close`, so one connection
 * carries one request and the proxy needs no HTTP framing beyond the heads.
 */

export type Fault =
  | "none"
  /** close the client's connection as soon as the request head arrives */
  | "reset"
  /** answer 500 InternalError */
  | "500"
  /** answer 503 SlowDown */
  | "503"
  /** say nothing for `stallMs`, then close */
  | "stall"
  /** forward the request; pass half the response, then close */
  | "truncate-response"
  /** forward the request; pass half the response, stall, then close */
  | "stall-response"
  /** pass half the request body upstream, then close both sides */
  | "truncate-request";

export const ALL_FAULTS: Fault[] = [
  "reset",
  "500",
  "503",
  "stall",
  "truncate-response",
  "stall-response",
  "truncate-request",
];

export interface RequestInfo {
  method: string;
  path: string;
  /** Sequence number of the request (from 0). */
  n: number;
  /** The request's header lines as sent ("Name: value"). */
  headers: string[];
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** Decides each request's fault; replace at will. */
  choose: (req: RequestInfo) => Fault;
  /** How many times each fault was injected (and "none" passed). */
  counts: Record<Fault, number>;
  stallMs: number;
  stop(): Promise<void>;
}

/** Deterministic PRNG (mulberry32) for reproducible fault sequences. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A chooser injecting a fault with probability `p`, the kind picked uniformly from `faults`. */
export function randomFaults(p: number, seed: number, faults = ALL_FAULTS): () => Fault {
  const rnd = prng(seed);
  return () => (rnd() < p ? faults[Math.floor(rnd() * faults.length)] : "none");
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) return i + 1;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function errorResponse(status: number, code: string, message: string): Uint8Array {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
  const reason = status === 500 ? "Internal Server Error" : "Service Unavailable";
  return enc.encode(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/xml\r\nContent-Length: ${
      enc.encode(body).length
    }\r\nConnection: close\r\n\r\n${body}`,
  );
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

function closeQuietly(c: Deno.Conn | null): void {
  try {
    c?.close();
  } catch { /* closed */ }
}

/** Starts a proxy to `upstream` (`http://127.0.0.1:PORT`). */
export function startFaultProxy(upstream: string, stallMs = 1500): FaultProxy {
  const up = new URL(upstream);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const timers = new Set<() => void>(); // wakes the sleeping stalls
  let stopped = false;
  let seq = 0;
  const counts = Object.fromEntries(["none", ...ALL_FAULTS].map((f) => [f, 0])) as Record<
    Fault,
    number
  >;
  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    choose: () => "none",
    counts,
    stallMs,
    async stop() {
      stopped = true;
      listener.close();
      for (const wake of [...timers]) wake();
      for (const c of conns) closeQuietly(c);
      await Promise.allSettled([...tasks]);
    },
  };
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const wake = () => {
        clearTimeout(t);
        timers.delete(wake);
        r();
      };
      const t = setTimeout(wake, ms);
      timers.add(wake);
    });

  const handle = async (client: Deno.Conn) => {
    let server: Deno.Conn | null = null;
    try {
      // the request head
      let buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
      const chunk = new Uint8Array(64 * 1024);
      let end = -1;
      while (end < 0) {
        const n = await client.read(chunk);
        if (n === null) return;
        buf = concat(buf, chunk.subarray(0, n));
        end = indexOfHeadEnd(buf);
        if (buf.length > 1 << 20) return;
      }
      const head = dec.decode(buf.subarray(0, end));
      const [requestLine, ...headerLines] = head.slice(0, -4).split("\r\n");
      const [method, path] = requestLine.split(" ");
      const fault = stopped
        ? "reset"
        : proxy.choose({ method, path, n: seq++, headers: headerLines });
      counts[fault]++;
      if (Deno.env.get("FAULT_PROXY_DEBUG")) {
        console.error(`proxy: #${seq - 1} ${method} ${path} → ${fault}`);
      }
      if (fault === "reset") return;
      if (fault === "500") {
        await writeAll(client, errorResponse(500, "InternalError", "injected fault"));
        return;
      }
      if (fault === "503") {
        await writeAll(client, errorResponse(503, "SlowDown", "Please reduce your request rate."));
        return;
      }
      if (fault === "stall") {
        await sleep(proxy.stallMs);
        return;
      }
      const headers = headerLines.filter((l) => !/^(connection|keep-alive):/i.test(l));
      const contentLength = Number(
        headers.find((l) => /^content-length:/i.test(l))?.split(":")[1] ?? "0",
      );
      const chunked = headers.some((l) => /^transfer-encoding:\s*chunked/i.test(l));
      const newHead = enc.encode(
        [requestLine, ...headers, "Connection: close", "", ""].join("\r\n"),
      );
      server = await Deno.connect({ hostname: up.hostname, port: Number(up.port) });
      conns.add(server);
      const s = server;
      let rest = buf.subarray(end);
      if (fault === "truncate-request") {
        const half = Math.floor(contentLength / 2);
        await writeAll(s, newHead);
        let sent = 0;
        const take = (b: Uint8Array) => b.subarray(0, Math.max(0, half - sent));
        const first = take(rest);
        await writeAll(s, first);
        sent += first.length;
        while (sent < half) {
          const n = await client.read(chunk);
          if (n === null) break;
          const part = take(chunk.subarray(0, n));
          await writeAll(s, part);
          sent += part.length;
        }
        await sleep(50);
        return;
      }
      // request: head, then the body as it comes
      const upload = (async () => {
        await writeAll(s, newHead);
        if (rest.length) await writeAll(s, rest);
        rest = new Uint8Array(0);
        let sent = buf.length - end;
        // a chunked body ends with the zero-length chunk: "0\r\n\r\n"
        let tail = dec.decode(buf.subarray(Math.max(end, buf.length - 5)));
        while (chunked ? !tail.endsWith("0\r\n\r\n") : sent < contentLength) {
          const n = await client.read(chunk);
          if (n === null) break;
          await writeAll(s, chunk.subarray(0, n));
          sent += n;
          tail = (tail + dec.decode(chunk.subarray(Math.max(0, n - 5), n))).slice(-5);
        }
      })();
      upload.catch(() => {});
      // response: passed through, cut short for the truncating faults
      let limit = Infinity;
      let total = 0;
      let respBuf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
      const rchunk = new Uint8Array(64 * 1024);
      while (true) {
        const n = await s.read(rchunk);
        if (n === null) break;
        let piece = rchunk.subarray(0, n);
        if (limit === Infinity && (fault === "truncate-response" || fault === "stall-response")) {
          respBuf = concat(respBuf, piece);
          const he = indexOfHeadEnd(respBuf);
          if (he < 0) continue;
          const rh = dec.decode(respBuf.subarray(0, he));
          const cl = Number(/\r\ncontent-length:\s*(\d+)/i.exec(rh)?.[1] ?? "0");
          limit = he + Math.floor(cl / 2);
          piece = respBuf;
        }
        const room = limit - total;
        if (piece.length >= room) {
          await writeAll(client, piece.subarray(0, room));
          total += room;
          if (fault === "stall-response") await sleep(proxy.stallMs);
          return;
        }
        await writeAll(client, piece);
        total += piece.length;
      }
      await upload.catch(() => {});
    } catch {
      // a side went away: just close
    } finally {
      conns.delete(client);
      closeQuietly(client);
      if (server) {
        conns.delete(server);
        closeQuietly(server);
      }
    }
  };

  const accept = (async () => {
    try {
      for await (const c of listener) {
        conns.add(c);
        const t = handle(c);
        tasks.add(t);
        t.finally(() => tasks.delete(t));
      }
    } catch { /* listener closed */ }
  })();
  tasks.add(accept);
  return proxy;
}
