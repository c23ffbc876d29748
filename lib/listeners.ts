import { log, reason } from "./log";

/**
 * Listeners by event type, with a ceiling on how many may listen at once: a listener that is
 * never removed is a leak, and the ceiling turns it into a loud error instead of slow memory
 * growth. A listener that throws is logged and skipped: whoever emits (an actor answering its
 * callers) must never fail because someone was watching.
 */
export class Listeners<Events extends { type: string }> {
  private readonly byType = new Map<Events["type"], Set<(event: Events) => void>>();
  private count = 0;

  constructor(private readonly listenersMax: number) {}

  /** Call `fn` with every event of `type` from now on; the returned function stops it. */
  on<T extends Events["type"]>(type: T, fn: (event: Extract<Events, { type: T }>) => void): () => void {
    if (this.count >= this.listenersMax) throw new Error(`more than ${this.listenersMax} listeners: is one never removed?`);
    const listener = fn as (event: Events) => void;
    let set = this.byType.get(type);
    if (!set) this.byType.set(type, (set = new Set()));
    set.add(listener);
    this.count++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      set.delete(listener);
      this.count--;
    };
  }

  /** True when someone listens to `type` (so an emitter can skip building the event). */
  wants(type: Events["type"]): boolean {
    return (this.byType.get(type)?.size ?? 0) > 0;
  }

  emit(event: Events): void {
    const set = this.byType.get(event.type as Events["type"]);
    if (!set?.size) return;
    for (const fn of [...set]) {
      try {
        fn(event);
      } catch (error) {
        log("error", "an event listener failed", { type: event.type, error: reason(error) });
      }
    }
  }

  get size(): number {
    return this.count;
  }
}
