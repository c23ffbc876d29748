import { log, reason } from "../../lib/log";

/**
 * A background job's heartbeat: it runs a pass when kicked (something was just committed) and
 * every `pollMs` anyway (in case a kick was missed), never two passes at once; a kick during a
 * pass runs one more pass after it. A pass returns true when it stopped with work left.
 */
export class Pump {
  private running = false;
  private again = false;
  private stopped = false;
  private readonly timer: Timer;

  constructor(
    private readonly name: string,
    private readonly pass: () => Promise<boolean>,
    pollMs: number,
  ) {
    this.timer = setInterval(() => this.kick(), pollMs);
    this.timer.unref?.();
  }

  get busy(): boolean {
    return this.running;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.running) await Bun.sleep(10);
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
    try {
      do {
        this.again = false;
        if (await this.pass()) this.again = true;
      } while (this.again && !this.stopped);
    } catch (error) {
      log("warn", `${this.name} pass failed; will retry`, { error: reason(error) });
    } finally {
      this.running = false;
    }
  }
}
