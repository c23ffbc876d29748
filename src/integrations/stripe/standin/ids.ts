import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Random base62 text, as in Stripe's ids (`pi_3Px…`). */
export function randomToken(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % ALPHABET.length];
  return out;
}

/**
 * Stripe's id prefixes: pi_ PaymentIntent, ch_ Charge, re_ Refund, dp_ Dispute, po_ Payout,
 * tr_ Transfer, evt_ Event, pm_ PaymentMethod, txn_ BalanceTransaction, py_ (a Connect payment on the
 * destination account), req_ request ids.
 */
export type IdPrefix = "pi" | "ch" | "re" | "dp" | "po" | "tr" | "evt" | "pm" | "txn" | "py" | "req";

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${prefix === "req" ? randomToken(14) : "3S" + randomToken(22)}`;
}
