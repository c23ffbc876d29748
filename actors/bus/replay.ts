/**
 * Remembers the nonces of messages accepted in the last two validity windows, so the same signed
 * message is accepted once. Older messages are refused by their timestamp before they get here, so
 * two generations of `windowMs * 2` each are enough. Bounded: when a generation is full, new
 * messages are refused (the sender retries with a fresh nonce later) rather than remembered less.
 */
export class ReplayGuard {
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAtMs: number;

  constructor(
    private readonly windowMs: number,
    private readonly generationMax: number,
    nowMs: number,
  ) {
    this.rotatedAtMs = nowMs;
  }

  /** "fresh" the first time a nonce is seen; "replay" after; "full" when no more can be remembered now. */
  admit(nonce: string, nowMs: number): "fresh" | "replay" | "full" {
    if (nowMs - this.rotatedAtMs >= this.windowMs * 2) {
      this.previous = this.current;
      this.current = new Set();
      this.rotatedAtMs = nowMs;
    }
    if (this.current.has(nonce) || this.previous.has(nonce)) return "replay";
    if (this.current.size >= this.generationMax) return "full";
    this.current.add(nonce);
    return "fresh";
  }
}
