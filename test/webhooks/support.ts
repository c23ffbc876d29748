import type { As } from "../support/auth";
import type { TestNode } from "../support/node";

/**
 * A real local HTTP receiver for webhooks out (Bun.serve on 127.0.0.1), whose answers a test
 * scripts: fail, time out, answer slowly, then recover. It keeps every request it got with its raw
 * body, as an app would see it, and which ones it accepted (2xx).
 */
export interface Received {
  /** The raw body, exactly as it arrived (what a signature covers). */
  raw: string;
  body: { id: string; type: string; created: string; data: Record<string, any> };
  headers: Headers;
  /** The status the receiver answered (0: it never answered: the sender gave up first). */
  status: number;
  at: number;
}

/** What to do with the n-th request (counting from 1): a status, after a pause when `delayMs` is given. */
export type Behaviour = (req: Received, n: number) => { status: number; delayMs?: number };

export interface Receiver {
  url: string;
  port: number;
  requests: Received[];
  /** The requests it answered 2xx, in the order it answered them. */
  accepted(): Received[];
  behave(next: Behaviour): void;
  stop(): Promise<void>;
}

export const ALWAYS_OK: Behaviour = () => ({ status: 204 });

export function startReceiver(behaviour: Behaviour = ALWAYS_OK, host = "127.0.0.1"): Receiver {
  let behave = behaviour;
  const requests: Received[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 30,
    async fetch(req) {
      const raw = await req.text();
      let body: Received["body"];
      try {
        body = JSON.parse(raw);
      } catch {
        return new Response("bad json", { status: 400 });
      }
      const received: Received = { raw, body, headers: req.headers, status: 0, at: Date.now() };
      requests.push(received);
      const { status, delayMs } = behave(received, requests.length);
      if (delayMs) await Bun.sleep(delayMs);
      received.status = status;
      return new Response(status === 204 ? null : "{}", { status });
    },
  });
  return {
    url: `http://${host}:${server.port}/hooks`,
    port: server.port!,
    requests,
    accepted: () => requests.filter((r) => r.status >= 200 && r.status < 300).sort((a, b) => a.at - b.at),
    behave(next) {
      behave = next;
    },
    stop: () => server.stop(true),
  };
}

/**
 * A node that may deliver to its local receiver (the operator's allow configuration) and retries
 * fast: the timings of a test, not of production.
 */
export const WEBHOOK_TEST_ENV: Record<string, string> = {
  COFFER_TEST_STRIPE: "off",
  WEBHOOK_ALLOW_HOSTS: "127.0.0.1,localhost",
  WEBHOOK_ALLOW_HTTP: "true",
  WEBHOOK_POLL_MS: "25",
  WEBHOOK_RETRY_BASE_MS: "40",
  WEBHOOK_RETRY_MAX_MS: "300",
  WEBHOOK_TIMEOUT_MS: "400",
};

/** An app: a service that may register and read its webhook endpoints. */
export function appService(name: string): As {
  return { sub: `${name}-${crypto.randomUUID().slice(0, 8)}`, role: "service", perms: ["webhooks:write", "webhooks:read"] };
}

/** Register an endpoint; returns the answer's body (with the secret, shown this once). */
export async function register(t: TestNode, url: string, events: string[], as: As): Promise<any> {
  const res = await t.api("POST", "/v1/webhook-endpoints", { url, events }, { as });
  if (res.status !== 201) throw new Error(`registering ${url} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Poll until `check` holds (or throw after timeoutMs, saying what was waited for). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The endpoint's whole delivery log (every page). */
export async function deliveryLog(t: TestNode, endpointId: string, as: As): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.api("GET", `/v1/webhook-endpoints/${endpointId}/deliveries?limit=200${cursor ? `&cursor=${cursor}` : ""}`, undefined, { as });
    if (res.status !== 200) throw new Error(`delivery log: ${res.status} ${JSON.stringify(res.body)}`);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return items;
}

/**
 * Everything written to the console from now until `restore` (log lines are JSON lines on stdout
 * and stderr), still printed as usual.
 */
export function captureConsole(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const channels = ["log", "error", "warn", "info", "debug"] as const;
  // Plain replacement, not spyOn: it wraps whatever is there (another suite's spy included) and puts it back.
  const originals = channels.map((channel) => [channel, console[channel]] as const);
  for (const [channel, original] of originals) {
    console[channel] = (...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
      original.apply(console, args);
    };
  }
  return {
    lines,
    restore: () => {
      for (const [channel, original] of originals) console[channel] = original;
    },
  };
}
