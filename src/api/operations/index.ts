import type { Operation } from "../operation";
import { adminOperations } from "./admin";
import { apiKeyOperations } from "./api-keys";
import { chainOperations } from "./chain";
import { chamaOperations } from "./chamas";
import { depositOperations } from "./deposits";
import { monitoringOperations } from "./monitoring";
import { reportOperations } from "./reports";
import { transferOperations } from "./transfers";
import { walletOperations } from "./wallets";
import { webhookOperations } from "./webhooks";
import { withdrawalOperations } from "./withdrawals";

/**
 * Every operation Coffer offers, each declared once. REST (src/http/operations.ts), NATS
 * (src/nats/api.ts), OpenAPI, the typed client (client/) and the security suites are built from
 * this list: adding an entry makes an operation reachable, checked, limited and documented.
 */
export const OPERATIONS: readonly Operation[] = [
  ...walletOperations,
  ...withdrawalOperations,
  ...transferOperations,
  ...depositOperations,
  ...chamaOperations,
  ...apiKeyOperations,
  ...webhookOperations,
  ...adminOperations,
  ...monitoringOperations,
  ...reportOperations,
  ...chainOperations,
] as Operation[];

/**
 * Every declaration with its literal name and its schemas' types (a union, one member per entry;
 * an entry made by `.map` over several actions carries a union of names). The typed client
 * (client/) takes the names, inputs and outputs from this type, with `import type` only.
 */
export type DeclaredOperation =
  | (typeof walletOperations)[number]
  | (typeof withdrawalOperations)[number]
  | (typeof transferOperations)[number]
  | (typeof depositOperations)[number]
  | (typeof chamaOperations)[number]
  | (typeof apiKeyOperations)[number]
  | (typeof webhookOperations)[number]
  | (typeof adminOperations)[number]
  | (typeof monitoringOperations)[number]
  | (typeof reportOperations)[number]
  | (typeof chainOperations)[number];

export type OperationName = DeclaredOperation["name"];

const byName = new Map(OPERATIONS.map((op) => [op.name, op]));
if (byName.size !== OPERATIONS.length) throw new Error("two operations share a name");

export function operationNamed(name: string): Operation | undefined {
  return byName.get(name);
}
