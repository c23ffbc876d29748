import { createHmac } from "node:crypto";
import type Stripe from "stripe";
import type { StandinState } from "./store";
import type { WorkTracker } from "./work";

/**
 * Sends events to the webhook URL the way Stripe does: a POST of the event as JSON, signed in the
 * `Stripe-Signature` header (`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`), retried
 * with exponential backoff on anything but a 2xx, asynchronously from the API call that caused it.
 * The delivery switch bends this for tests: every event twice, bursts out of order, or late.
 */

export interface DeliveryMode {
  /** Every event is delivered twice (the copy right after the original). */
  twice: boolean;
  /** Events created within one burst window are delivered in an order that differs from creation. */
  shuffled: boolean;
  /** Every first attempt waits this long (ms) before it is sent. */
  lateMs: number;
}

export const NORMAL_DELIVERY: DeliveryMode = { twice: false, shuffled: false, lateMs: 0 };
export const DEFAULT_LATE_MS = 1_000;

export type DeliveryInput = string | Partial<DeliveryMode>;

/** `normal`, `twice`, `shuffled`, `late` (1 s) or `late:<ms>`, combined with commas: `twice,shuffled,late:200`. */
export function parseDeliveryMode(input: DeliveryInput | undefined): DeliveryMode {
  if (input === undefined) return { ...NORMAL_DELIVERY };
  if (typeof input !== "string") {
    return { twice: input.twice ?? false, shuffled: input.shuffled ?? false, lateMs: Math.max(0, input.lateMs ?? 0) };
  }
  const mode = { ...NORMAL_DELIVERY };
  for (const raw of input.split(/[,+\s]+/)) {
    const part = raw.trim().toLowerCase();
    if (part === "" || part === "normal") continue;
    if (part === "twice" || part === "duplicate" || part === "duplicated") mode.twice = true;
    else if (part === "shuffled" || part === "shuffle" || part === "out-of-order") mode.shuffled = true;
    else if (part === "late") mode.lateMs = DEFAULT_LATE_MS;
    else if (/^late[:=]\d+$/.test(part)) mode.lateMs = Number(part.slice(5));
    else throw new Error(`unknown webhook delivery mode "${raw}" (use normal, twice, shuffled, late, late:<ms>, comma-separated)`);
  }
  return mode;
}

export function describeDeliveryMode(m: DeliveryMode): string {
  const parts: string[] = [];
  if (m.twice) parts.push("twice");
  if (m.shuffled) parts.push("shuffled");
  if (m.lateMs > 0) parts.push(`late:${m.lateMs}`);
  return parts.length === 0 ? "normal" : parts.join(",");
}

export interface RetryPolicy {
  /** Attempts per delivery, the first included; default 5. */
  maxAttempts: number;
  /** Wait before the first retry; doubles each time; default 500 ms. */
  baseDelayMs: number;
  /** Longest wait between attempts; default 30 s. */
  maxDelayMs: number;
  /** One attempt's timeout; default 10 s. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, timeoutMs: 10_000 };

/** One HTTP attempt to deliver one event, with the endpoint's answer. */
export interface Delivery {
  seq: number;
  event_id: string;
  event_type: string;
  /** 0 for the original delivery, 1 for the `twice` copy, 2+ for manual resends. */
  copy: number;
  /** 1 for the first attempt, then 2, 3, … for retries. */
  attempt: number;
  url: string;
  /** The endpoint's HTTP status, or null when no answer came (connection refused, timeout). */
  status: number | null;
  ok: boolean;
  error: string | null;
  /** The first 1 000 characters of the endpoint's answer. */
  response_body: string;
  signature: string;
  started_at_ms: number;
  duration_ms: number;
}

/** The `Stripe-Signature` header value for `payload`, exactly as Stripe computes it. */
export function signPayload(payload: string, secret: string, timestampSeconds = Math.floor(Date.now() / 1000)): string {
  const v1 = createHmac("sha256", secret).update(`${timestampSeconds}.${payload}`, "utf8").digest("hex");
  return `t=${timestampSeconds},v1=${v1}`;
}

interface Job {
  eventId: string;
  copy: number;
  attempt: number;
  end: () => void;
}

export interface DispatcherOptions {
  url?: string;
  secret?: string;
  mode: DeliveryMode;
  retry: RetryPolicy;
  /** Deliveries in flight at once; 1 (default) keeps first attempts in the order they were queued. */
  concurrency: number;
  /** How long a shuffled burst collects events before sending them; default 25 ms. */
  burstWindowMs: number;
  /** Delivery records kept for assertions; default 10 000. */
  maxDeliveries: number;
  /** Deliveries waiting to be sent; past it new ones are dropped (and logged); default 10 000. */
  maxQueued: number;
  log: (line: string) => void;
}

export class WebhookDispatcher {
  private readonly ready: Job[] = [];
  private burst: Job[] = [];
  private burstScheduled = false;
  private inFlight = 0;
  private queued = 0;
  private seq = 0;
  private resendCopies = new Map<string, number>();
  private readonly log: Delivery[] = [];
  private readonly aborts = new Set<AbortController>();
  private readonly timers = new Map<ReturnType<typeof setTimeout>, Job>();
  private readonly sending = new Set<Job>();
  private generation = 0;

  constructor(
    private readonly state: StandinState,
    private readonly work: WorkTracker,
    private readonly opts: DispatcherOptions,
  ) {}

  get url(): string | undefined {
    return this.opts.url;
  }

  get mode(): DeliveryMode {
    return { ...this.opts.mode };
  }

  configured(): boolean {
    return Boolean(this.opts.url && this.opts.secret);
  }

  setMode(mode: DeliveryMode): void {
    this.opts.mode = { ...mode };
  }

  setEndpoint(url: string | undefined, secret: string | undefined): void {
    if (url && !secret) throw new Error("stripe stand-in: a webhook URL needs a webhook secret (STRIPE_WEBHOOK_SECRET)");
    if (url) new URL(url);
    this.opts.url = url;
    this.opts.secret = secret;
  }

  deliveries(): Delivery[] {
    return this.log.map((d) => ({ ...d }));
  }

  enqueue(event: Stripe.Event): void {
    if (!this.configured()) return;
    const jobs = [this.job(event.id, 0)];
    if (this.opts.mode.twice) jobs.push(this.job(event.id, 1));
    for (const job of jobs) {
      if (!job) continue;
      if (this.opts.mode.shuffled) this.addToBurst(job);
      else this.afterLate(job);
    }
  }

  /** Deliver an event again now (a manual resend from the control API), as a new copy. */
  resend(eventId: string): void {
    if (!this.configured()) throw new Error("stripe stand-in: no webhook URL is configured");
    const copy = (this.resendCopies.get(eventId) ?? 1) + 1;
    this.resendCopies.set(eventId, copy);
    const job = this.job(eventId, copy);
    if (job) this.toReady(job);
  }

  /** Forget queued deliveries and records (in-flight requests are aborted). */
  reset(): void {
    this.generation++;
    for (const a of this.aborts) a.abort();
    this.aborts.clear();
    for (const [timer, job] of this.timers) {
      clearTimeout(timer);
      this.finish(job);
    }
    this.timers.clear();
    for (const job of [...this.ready, ...this.burst, ...this.sending]) this.finish(job);
    this.sending.clear();
    this.ready.length = 0;
    this.burst = [];
    this.log.length = 0;
    this.resendCopies.clear();
  }

  private job(eventId: string, copy: number): Job | null {
    if (this.queued >= this.opts.maxQueued) {
      this.opts.log(`webhook delivery of ${eventId} dropped: ${this.queued} deliveries already queued (limit ${this.opts.maxQueued})`);
      return null;
    }
    this.queued++;
    return { eventId, copy, attempt: 1, end: this.work.begin() };
  }

  private finish(job: Job): void {
    this.queued--;
    job.end();
  }

  private later(job: Job, ms: number, then: (job: Job) => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      then(job);
    }, ms);
    this.timers.set(timer, job);
  }

  private addToBurst(job: Job): void {
    this.burst.push(job);
    if (this.burstScheduled) return;
    this.burstScheduled = true;
    this.work.schedule(() => {
      this.burstScheduled = false;
      const jobs = this.burst;
      this.burst = [];
      for (const j of shuffleDifferently(jobs)) this.afterLate(j);
    }, this.opts.burstWindowMs);
  }

  private afterLate(job: Job): void {
    if (this.opts.mode.lateMs > 0) this.later(job, this.opts.mode.lateMs, (j) => this.toReady(j));
    else this.toReady(job);
  }

  private toReady(job: Job): void {
    this.ready.push(job);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < Math.max(1, this.opts.concurrency) && this.ready.length > 0) {
      const job = this.ready.shift()!;
      this.inFlight++;
      const generation = this.generation;
      this.sending.add(job);
      void this.attempt(job, generation).finally(() => {
        this.sending.delete(job);
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async attempt(job: Job, generation: number): Promise<void> {
    const event = this.state.events.get(job.eventId);
    const url = this.opts.url;
    const secret = this.opts.secret;
    if (!event || !url || !secret) {
      this.finish(job);
      return;
    }
    const body = JSON.stringify(event, null, 2);
    const signature = signPayload(body, secret);
    const started = Date.now();
    const abort = new AbortController();
    this.aborts.add(abort);
    const timeout = setTimeout(() => abort.abort(new Error(`timed out after ${this.opts.retry.timeoutMs} ms`)), this.opts.retry.timeoutMs);
    let status: number | null = null;
    let error: string | null = null;
    let responseBody = "";
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json; charset=utf-8",
          "stripe-signature": signature,
          "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
          "cache-control": "no-cache",
          accept: "*/*; q=0.5, application/xml",
        },
        body,
        signal: abort.signal,
      });
      status = res.status;
      responseBody = (await res.text()).slice(0, 1_000);
    } catch (err) {
      error = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason.message : String((err as Error)?.message ?? err);
    } finally {
      clearTimeout(timeout);
      this.aborts.delete(abort);
    }
    if (generation !== this.generation) return; // reset() already settled this job
    const ok = status !== null && status >= 200 && status < 300;
    this.record({
      seq: ++this.seq,
      event_id: event.id,
      event_type: event.type,
      copy: job.copy,
      attempt: job.attempt,
      url,
      status,
      ok,
      error,
      response_body: responseBody,
      signature,
      started_at_ms: started,
      duration_ms: Date.now() - started,
    });
    if (ok) {
      event.pending_webhooks = 0;
      this.finish(job);
      return;
    }
    if (job.attempt >= this.opts.retry.maxAttempts) {
      this.opts.log(`webhook ${event.id} (${event.type}) gave up after ${job.attempt} attempts: ${status ?? error}`);
      this.finish(job);
      return;
    }
    const delay = Math.min(this.opts.retry.maxDelayMs, this.opts.retry.baseDelayMs * 2 ** (job.attempt - 1));
    job.attempt++;
    this.later(job, delay, (j) => this.toReady(j));
  }

  private record(d: Delivery): void {
    this.log.push(d);
    if (this.log.length > this.opts.maxDeliveries) this.log.splice(0, this.log.length - this.opts.maxDeliveries);
  }
}

/** A random permutation that is never the original order (when there are two or more). */
export function shuffleDifferently<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  if (out.length >= 2 && out.every((v, i) => v === items[i])) out.push(out.shift()!);
  return out;
}
