/**
 * Debian's Chromium, headless, driven over the DevTools protocol (a
 * WebSocket, no npm driver): open a page, collect its console errors,
 * evaluate, click at a point, take a screenshot. Started on loopback with a
 * fresh profile and without background networking (this machine's network
 * is closed); every test closes what it started.
 */

export const CHROMIUM = "/usr/bin/chromium";

type Json = Record<string, unknown>;

export class Browser {
  readonly #child: Deno.ChildProcess;
  readonly #ws: WebSocket;
  readonly #profile: string;
  #id = 0;
  readonly #waiting = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  readonly #listeners: ((method: string, params: Json, session?: string) => void)[] = [];

  private constructor(child: Deno.ChildProcess, ws: WebSocket, profile: string) {
    this.#child = child;
    this.#ws = ws;
    this.#profile = profile;
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data as string);
      if (m.id !== undefined) {
        const w = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        if (m.error) w?.reject(new Error(`${m.error.message} ${m.error.data ?? ""}`));
        else w?.resolve(m.result ?? {});
      } else {
        for (const l of this.#listeners) l(m.method, m.params ?? {}, m.sessionId);
      }
    };
  }

  static async launch(): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "strata-chromium-" });
    const child = new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // it prints "DevTools listening on ws://…" on stderr
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const deadline = Date.now() + 30_000;
    let url: string | null = null;
    while (url === null && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
      url = /DevTools listening on (ws:\/\/\S+)/.exec(seen)?.[1] ?? null;
    }
    if (url === null) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw new Error(`chromium did not start: ${seen.slice(-2000)}`);
    }
    // keep draining its stderr so that it never blocks on a full pipe
    (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drop */ }
    })();
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Browser(child, ws, profile);
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(l: (method: string, params: Json, session?: string) => void): void {
    this.#listeners.push(l);
  }

  /** A new tab showing `url`, once its load event fired. */
  async open(url: string, size = { width: 1280, height: 960 }): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    this.on((method, params, session) => {
      if (session === sessionId) page.event(method, params);
    });
    await page.send("Runtime.enable");
    await page.send("Log.enable");
    await page.send("Page.enable");
    await page.send("Emulation.setDeviceMetricsOverride", {
      ...size,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const loaded = page.waitFor("Page.loadEventFired");
    await page.send("Page.navigate", { url });
    await loaded;
    return page;
  }

  async close(): Promise<void> {
    await this.send("Browser.close").catch(() => {});
    this.#ws.close();
    const exited = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
    ]);
    if (!exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
      await this.#child.status;
    }
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}

export class Page {
  readonly #browser: Browser;
  readonly #session: string;
  /** Console errors, uncaught exceptions and error log entries (failed loads, CSP). */
  readonly errors: string[] = [];
  readonly #waiters: { method: string; resolve(p: Json): void }[] = [];

  constructor(browser: Browser, session: string) {
    this.#browser = browser;
    this.#session = session;
  }

  send(method: string, params: Json = {}): Promise<Json> {
    return this.#browser.send(method, params, this.#session);
  }

  event(method: string, params: Json): void {
    if (method === "Runtime.consoleAPICalled" && params.type === "error") {
      const args = (params.args as { value?: unknown; description?: string }[]) ?? [];
      this.errors.push(`console.error: ${args.map((a) => a.value ?? a.description).join(" ")}`);
    } else if (method === "Runtime.exceptionThrown") {
      const d = params.exceptionDetails as { text?: string; exception?: { description?: string } };
      this.errors.push(`exception: ${d.exception?.description ?? d.text}`);
    } else if (method === "Log.entryAdded") {
      const e = params.entry as { level: string; text: string; url?: string };
      if (e.level === "error") this.errors.push(`log: ${e.text} ${e.url ?? ""}`);
    }
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      if (this.#waiters[i].method === method) {
        this.#waiters[i].resolve(params);
        this.#waiters.splice(i, 1);
      }
    }
  }

  waitFor(method: string): Promise<Json> {
    return new Promise((resolve) => this.#waiters.push({ method, resolve }));
  }

  /** The value of `expression` (awaited when it is a promise). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    const ex = r.exceptionDetails as { exception?: { description?: string }; text?: string };
    if (ex) throw new Error(`evaluate failed: ${ex.exception?.description ?? ex.text}`);
    return (r.result as { value: T }).value;
  }

  /** Waits until `expression` is truthy (checked every 100 ms). */
  async until(expression: string, what: string, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A real mouse click (pressed and released) at viewport point (x, y). */
  async click(x: number, y: number): Promise<void> {
    await this.send("Input.dispatchMouseEvent", { type: "mouseMoved", x, y });
    for (const type of ["mousePressed", "mouseReleased"]) {
      await this.send("Input.dispatchMouseEvent", { type, x, y, button: "left", clickCount: 1 });
    }
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Uint8Array> {
    const r = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    });
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }
}
