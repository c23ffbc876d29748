import type { ActorEvent, ActorHost } from "../../actors/host";

/**
 * Waiting on what an actor reports (ActorHost.on) instead of polling its state. Ask BEFORE doing
 * what causes the event: an event that fired before anyone listened is gone.
 *
 *   const started = nextEvent(host, "batch", (e) => e.id === walletId);
 *   const paying = api("POST", `/v1/wallets/${walletId}/payments`, { amount: "1.00" });
 *   await started; // the payment left the mailbox and is being committed
 */
export type EventOf<T extends ActorEvent["type"]> = Extract<ActorEvent, { type: T }>;

const DEFAULT_TIMEOUT_MS = 5_000;

/** The next `type` event that `matches`; rejects after `timeoutMs` saying what it waited for. */
export async function nextEvent<T extends ActorEvent["type"]>(
  host: ActorHost,
  type: T,
  matches: (event: EventOf<T>) => boolean = () => true,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<EventOf<T>> {
  const [event] = await collectEvents(host, type, matches, 1, timeoutMs);
  return event!;
}

/** The next `count` `type` events that `matches`, in the order they came; rejects after `timeoutMs`. */
export function collectEvents<T extends ActorEvent["type"]>(
  host: ActorHost,
  type: T,
  matches: (event: EventOf<T>) => boolean,
  count: number,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<EventOf<T>[]> {
  const seen: EventOf<T>[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`${seen.length} of ${count} "${type}" events within ${timeoutMs} ms (${matches.toString().slice(0, 200)})`));
    }, timeoutMs);
    const stop = host.on(type, (event) => {
      if (!matches(event)) return;
      seen.push(event);
      if (seen.length < count) return;
      clearTimeout(timer);
      stop();
      resolve(seen);
    });
  });
}
