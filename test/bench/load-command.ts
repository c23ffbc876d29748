import type { Envelope } from "../../actors/envelope";

/**
 * The command that makes a wallet's actor live without moving money (node-server.ts /load,
 * lean/passivated-probe.ts): unfreeze an active wallet. The machine applies it, finds nothing to do
 * (409 INVALID_TRANSITION, recorded under its key like any answer), and the actor has loaded its
 * snapshot, started its machine, answered and committed the key.
 */
export function loadCommand(i: number): Envelope {
  return {
    kind: "wallet",
    command: { type: "wallet.unfreeze", at: new Date().toISOString() },
    idempotency: { scope: "admin:bench-admin", key: `load-${i}-${crypto.randomUUID()}`, fingerprint: "bench" },
    principal: { sub: "bench-admin", role: "admin", permissions: [] },
  } as Envelope;
}
