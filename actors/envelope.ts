import type { ChamaCommand } from "../machines/chama.events";
import type { DepositCommand } from "../machines/deposit.events";
import type { WalletCommand } from "../machines/wallet.events";
import type { PrincipalClaim } from "../lib/principal";

/** The caller's idempotency claim: same scope and key with the same fingerprint replays the first outcome. */
export interface Idempotency {
  scope: string;
  key: string;
  /** Hash of what was asked (operation, target, body); a different one under the same key is a conflict. */
  fingerprint: string;
}

export type { Reply } from "../lib/errors";

/** Which machine an actor runs. Ids are UUIDs, so a wallet and a chama never share one. */
export type ActorKindName = "wallet" | "chama" | "deposit";

/**
 * One command for one actor, with the caller's idempotency claim and who the edge proved the caller
 * to be (the actor checks again that this principal may send this command to this actor).
 */
export type Envelope =
  | { kind?: "wallet"; command: WalletCommand; idempotency: Idempotency; principal: PrincipalClaim }
  | { kind: "chama"; command: ChamaCommand; idempotency: Idempotency; principal: PrincipalClaim }
  | { kind: "deposit"; command: DepositCommand; idempotency: Idempotency; principal: PrincipalClaim };

export function idempotencyId(i: Idempotency): string {
  return `${i.scope}\u0000${i.key}`;
}
