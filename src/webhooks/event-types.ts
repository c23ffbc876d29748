import type { ChamaEffectType } from "../../machines/chama.events";
import type { DepositEffect } from "../../machines/deposit.events";
import type { WalletEffect } from "../../machines/wallet.events";

/**
 * The event types apps may subscribe their webhook endpoints to: every domain event the actors
 * commit to the outbox (README "Events"), and nothing else. Operational events that share the
 * outbox (`webhook_endpoint.disabled`, monitoring alerts…) are never sent to apps: they name other
 * apps' endpoints or what operators watch.
 *
 * The list must follow the machines: a new effect type that reaches the outbox fails the type check
 * below (`Missing`) until it is added here, so an app can subscribe to it and it is delivered.
 */
type Outboxed = Exclude<WalletEffect["type"] | ChamaEffectType | DepositEffect["type"], "rejected" | "chama.audit.recorded">;

export const EVENT_TYPES = [
  "wallet.opened",
  "wallet.credited",
  "wallet.paid",
  "wallet.frozen",
  "wallet.unfrozen",
  "wallet.closed",
  "withdrawal.changed",
  "transfer.reserved",
  "transfer.credited",
  "transfer.settled",
  "transfer.voided",
  "deposit.credited",
  "deposit.refund.debited",
  "deposit.refund.returned",
  "deposit.dispute.debited",
  "deposit.dispute.returned",
  "deposit.opened",
  "deposit.succeeded",
  "deposit.failed",
  "deposit.canceled",
  "deposit.refund.changed",
  "deposit.dispute.changed",
  "chama.opened",
  "chama.frozen",
  "chama.unfrozen",
  "chama.closed",
  "chama.member.invited",
  "chama.member.joined",
  "chama.member.removed",
  "chama.member.invitation_revoked",
  "chama.member.role_changed",
  "chama.rules.changed",
  "chama.deposited",
  "chama.transfer.credited",
  "chama.withdrawal.reviewed",
  "chama.withdrawal.changed",
] as const satisfies readonly Outboxed[];

export type EventType = (typeof EVENT_TYPES)[number];

type Missing = Exclude<Outboxed, EventType>;
/** Fails to compile while an outboxed effect type is missing from EVENT_TYPES (the error names it). */
const everyOutboxedTypeIsListed: [Missing] extends [never] ? true : Missing = true;
void everyOutboxedTypeIsListed;

const KNOWN = new Set<string>(EVENT_TYPES);

/** At most this many patterns per endpoint. */
export const EVENTS_PER_ENDPOINT_MAX = 64;

/**
 * A subscription pattern: `*` (every type above), an exact type (`wallet.paid`), or a prefix ending
 * in `.*` that at least one type has (`wallet.*`, `chama.withdrawal.*`). Anything else is refused,
 * so a typo never silently subscribes to nothing.
 */
export function isPattern(pattern: string): boolean {
  if (pattern === "*" || KNOWN.has(pattern)) return true;
  if (!pattern.endsWith(".*")) return false;
  const prefix = pattern.slice(0, -1); // "wallet."
  return prefix.length > 1 && EVENT_TYPES.some((t) => t.startsWith(prefix));
}

/** Whether an event of `type` goes to an endpoint subscribed to `patterns`: only the public types above ever do. */
export function subscribed(patterns: readonly string[], type: string): boolean {
  if (!KNOWN.has(type)) return false;
  return patterns.some((p) => p === "*" || p === type || (p.endsWith(".*") && type.startsWith(p.slice(0, -1))));
}

/**
 * Keys that never leave Coffer in a webhook, at any depth. The outbox payload already leaves
 * destinations out (actors/wallet-store.ts `outboxPayload`); this is the second lock on that door,
 * for a field a later event might carry by mistake.
 */
const PRIVATE_KEY = /^(destination|destinations|address|account|accountnumber|iban|routing|routingnumber|bankcode|card|cardnumber|token|secret|clientsecret|password|privatekey|key)$/i;

/** An event's data as apps receive it: the outbox payload without any private field. */
export function publicData(value: unknown, depth = 0): unknown {
  if (depth > 16 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => publicData(v, depth + 1));
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([k]) => !PRIVATE_KEY.test(k))
      .map(([k, v]) => [k, publicData(v, depth + 1)]),
  );
}
