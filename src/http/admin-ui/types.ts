/** The answers of the admin API the page reads (src/admin/outputs.ts is the source of truth; /openapi.json describes them). */
export interface Transaction {
  id: string;
  kind: string;
  status: string;
  asset: string;
  amount: string;
  walletId?: string;
  chamaId?: string;
  ownerId?: string;
  counterparty?: { walletId?: string; chamaId?: string };
  network?: string;
  reference?: string;
  createdAt: string;
  updatedAt: string;
}

export interface TransactionPage {
  items: Transaction[];
  nextCursor: string | null;
  /** The time range searched (src/admin/outputs.ts declares it; older nodes leave it out). */
  range?: { from: string; to: string };
}

export interface TransactionDetail extends Transaction {
  journals: { id: string; kind: string; asset: string; reference?: string; createdAt: string; postings: { account: string; amount: string }[] }[];
  history: { type: string; status?: string; journalId?: string; at: string }[];
  external: { system: string; kind: string; id: string; status?: string }[];
}

export interface Alert {
  id: string;
  rule: string;
  severity: "low" | "medium" | "high";
  status: "open" | "investigating" | "resolved" | "dismissed";
  subject: { kind: string; id: string };
  window: { start: string; end: string };
  count: number;
  facts: Record<string, string | number | boolean>;
  held: string[];
  firstAt: string;
  lastAt: string;
  reviewedBy?: string;
  reviewedAt?: string;
  createdAt: string;
  updatedAt: string;
}

export interface AlertDetail extends Alert {
  reviews: { reviewer: string; from: string; to: string; note?: string; at: string }[];
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Stats<T> {
  range: { from: string; to: string };
  items: T[];
}

export type DailyRow = { day: string; kind: string; asset: string; count: number; amount: string };
export type NetworkRow = { network: string; asset: string; status: string; count: number; amount: string };
export type StatusRow = { kind: string; status: string; asset: string; count: number; amount: string };

export interface Health {
  status: "ok" | "degraded" | "down";
  checkedAt: string;
  components: { name: string; state: "ok" | "degraded" | "down" | "not_configured"; latencyMs: number | null; details?: Record<string, string | number | boolean | null> }[];
  networks: string[];
}

export interface WebhookEndpoint {
  id: string;
  url: string;
  events: string[];
  status: "enabled" | "disabled";
  disabledReason: string | null;
  owner: string;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  aggregateId: string;
  status: "pending" | "delivered" | "failed";
  createdAt: string;
  attempts: { attempt: number; at: string; statusCode: number | null; error: string | null }[];
}
