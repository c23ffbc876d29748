import { delayMs } from "../../lib/backoff";
import { log, reason } from "../../lib/log";

/**
 * A background job's heartbeat: it runs a pass when kicked (something was just committed) and
 * every `pollMs` anyway (in case a kick was missed), never two passes at once; a kick during a
 * pass runs one more pass after it. A pass returns true when it stopped with work left.
 *
 * Bounds: one round runs at most `passesMax` passes back to back (what is left waits for the next
 * kick or poll, so one job never keeps the event loop to itself); a pass that throws is retried
 * after retryBaseMs, doubling with each failure in a row up to retryMaxMs (kicks meanwhile are
 * ignored: a failing database is not hammered on every commit); `stop` waits at most stopWaitMs
 * for the pass in hand. With kickGapMs, kicks coalesce: a pass a kick asks for starts no sooner than
 * kickGapMs after the one before it started (one timer at most waits for it), while a pass that
 * says there is more work left goes on at once. For a job every commit wakes (the outbox relay), a
 * burst of commits then is a pass or two, not one each.
 */
export interface PumpBounds {
  passesMax: number;
  retryBaseMs: number;
  retryMaxMs: number;
  stopWaitMs: number;
  kickGapMs: number;
}

const DEFAULT_BOUNDS: PumpBounds = { passesMax: 100, retryBaseMs: 100, retryMaxMs: 5_000, stopWaitMs: 10_000, kickGapMs: 0 };
/** Failures in a row past which a failing job is logged as an error (someone should look). */
const FAILURES_LOUD = 10;

export class Pump {
  private running = false;
  private again = false;
  private stopped = false;
  private readonly timer: Timer;
  private readonly bounds: PumpBounds;
  /** Failed passes in a row, and when the next may run (0: now). */
  private failures = 0;
  private retryAtMs = 0;
  private retryTimer: Timer | undefined;
  /** When the last pass started, and the timer that runs the pass a kick asked for once kickGapMs is over. */
  private lastPassAtMs = 0;
  private gapTimer: Timer | undefined;

  constructor(
    private readonly name: string,
    private readonly pass: () => Promise<boolean>,
    pollMs: number,
    bounds: Partial<PumpBounds> = {},
  ) {
    this.bounds = { ...DEFAULT_BOUNDS, ...bounds };
    this.timer = setInterval(() => this.kick(), pollMs);
    this.timer.unref?.();
  }

  get busy(): boolean {
    return this.running;
  }

  kick(): void {
    if (this.stopped || Date.now() < this.retryAtMs) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const waitMs = this.lastPassAtMs + this.bounds.kickGapMs - Date.now();
    if (waitMs > 0) {
      this.gapTimer ??= setTimeout(() => {
        this.gapTimer = undefined;
        this.kick();
      }, waitMs);
      this.gapTimer.unref?.();
      return;
    }
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.gapTimer) clearTimeout(this.gapTimer);
    const deadline = Date.now() + this.bounds.stopWaitMs;
    while (this.running && Date.now() < deadline) await Bun.sleep(10);
    if (this.running) log("warn", `${this.name} still busy after ${this.bounds.stopWaitMs} ms; stopping without it`);
  }

  /** Kick until `done()` holds (tests, shutdown); false if it did not within the time. */
  async until(done: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running && (await done())) return true;
      this.kick();
      await Bun.sleep(20);
    }
    return false;
  }

  private async run(): Promise<void> {
    this.running = true;
    /** A kick came during the last pass and must wait for kickGapMs: asked for again once the round is over. */
    let kickedMeanwhile = false;
    try {
      let passes = 0;
      do {
        this.again = false;
        this.lastPassAtMs = Date.now();
        const more = await this.pass();
        passes++;
        if (more) this.again = true;
        else if (this.again && this.bounds.kickGapMs > 0) {
          kickedMeanwhile = true;
          this.again = false;
        }
      } while (this.again && !this.stopped && passes < this.bounds.passesMax);
      // Work may be left after passesMax passes: the next kick or poll takes it up.
      this.again = false;
      this.failures = 0;
      this.retryAtMs = 0;
    } catch (error) {
      kickedMeanwhile = false;
      this.failures++;
      const retryInMs = delayMs(this.failures, this.bounds.retryBaseMs, this.bounds.retryMaxMs);
      this.retryAtMs = Date.now() + retryInMs;
      log(this.failures >= FAILURES_LOUD ? "error" : "warn", `${this.name} pass failed; will retry`, { error: reason(error), failures: this.failures, retryInMs });
      this.scheduleRetry(retryInMs);
    } finally {
      this.running = false;
    }
    if (kickedMeanwhile) this.kick();
  }

  private scheduleRetry(inMs: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryAtMs = 0; // (a timer may fire a hair early: it is the retry, whatever the clock says)
      this.kick();
    }, inMs);
    this.retryTimer.unref?.();
  }
}
