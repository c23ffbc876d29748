import type { Db, Queryable } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import { scopeOf, type Principal } from "../../lib/principal";
import { FieldError } from "../api/input";
import type { Vault, Sealed } from "../security/encryption";
import { newSecret } from "./signing";
import type { WebhookSettings } from "./settings";
import { checkUrlForm, resolveTarget, UrlRefused, type Resolver } from "./ssrf";

/**
 * Apps' webhook endpoints and their delivery logs (the operations are src/api/operations/webhooks.ts;
 * the worker that delivers is src/workers/webhook-delivery.ts).
 *
 * Who: admins and services with `webhooks:write` register and manage endpoints, auditors and
 * services with `webhooks:read` read them (lib/policy.ts). An endpoint belongs to whoever registered
 * it: a service sees and manages its own only (another's answers 404, exactly like one that does
 * not exist); admins and auditors see every one. Users have none.
 *
 * The signing secret exists in clear only in the answer to the registration (and its idempotent
 * replay, kept sealed with the idempotency record) and in the worker's memory while it signs;
 * the row holds it sealed with the Vault under the endpoint's id.
 */
export interface EndpointRow {
  id: string;
  owner: string;
  url: string;
  events: string[];
  secret_sealed: Sealed;
  status: "enabled" | "disabled";
  disabled_reason: "manual" | "failing" | null;
  disabled_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  aggregate_id: string;
  redelivery_of: string | null;
  status: "pending" | "delivered" | "failed";
  next_attempt_at: Date;
  created_at: Date;
  delivered_at: Date | null;
}

interface AttemptRow {
  delivery_id: string;
  attempt: number;
  at: Date;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
}

/** The Vault's associated data for an endpoint's secret: the sealed value opens on this row only. */
export const secretAad = (endpointId: string) => `webhook-endpoint:${endpointId}`;

export function endpointView(row: EndpointRow) {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    status: row.status,
    disabledReason: row.disabled_reason,
    disabledAt: row.disabled_at?.toISOString() ?? null,
    owner: row.owner,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function deliveryView(row: DeliveryRow, attempts: AttemptRow[]) {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    eventType: row.event_type,
    aggregateId: row.aggregate_id,
    redeliveryOf: row.redelivery_of,
    status: row.status,
    nextAttemptAt: row.status === "pending" ? row.next_attempt_at.toISOString() : null,
    createdAt: row.created_at.toISOString(),
    deliveredAt: row.delivered_at?.toISOString() ?? null,
    attempts: attempts.map((a) => ({ attempt: a.attempt, at: a.at.toISOString(), statusCode: a.status_code, latencyMs: a.latency_ms, error: a.error })),
  };
}

export interface Page {
  limit: number;
  cursor?: string | undefined;
}

const NOT_FOUND = () => new CofferError("NOT_FOUND", "webhook endpoint not found");

export class WebhookEndpoints {
  /** Told when there may be something to send now (the delivery worker's kick). */
  onChange: (() => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    readonly settings: WebhookSettings,
    private readonly resolve?: Resolver,
  ) {}

  /**
   * The URL, checked as a delivery would check it (ssrf.ts): refused with 400 naming `url`. A host
   * that does not resolve right now is taken (every delivery resolves it again).
   */
  async checkUrl(url: string): Promise<void> {
    try {
      const { host } = checkUrlForm(url, this.settings.policy);
      await resolveTarget(host, this.settings.policy, this.resolve);
    } catch (error) {
      if (error instanceof UrlRefused) throw new FieldError("url", error.reason);
      throw error;
    }
  }

  /** Register an endpoint; the returned secret is the only time it exists outside the row (sealed) and the worker. */
  async create(p: Principal, input: { url: string; events: string[] }, sql: Queryable): Promise<{ row: EndpointRow; secret: string }> {
    const owner = scopeOf(p);
    const [{ n }] = (await sql`select count(*)::int as n from webhook_endpoints where owner = ${owner} and status = 'enabled'`) as unknown as [{ n: number }];
    if (n >= this.settings.endpointsMax) throw new CofferError("LIMIT_EXCEEDED", `at most ${this.settings.endpointsMax} enabled webhook endpoints per owner; disable one first`);
    const id = Bun.randomUUIDv7();
    const secret = newSecret();
    const events = [...new Set(input.events)];
    const [row] = await sql`insert into webhook_endpoints (id, owner, url, events, secret_sealed, status, start_seq, created_at, updated_at)
      values (${id}, ${owner}, ${input.url}, ${events}, ${sql.json(this.vault.seal(secret, secretAad(id)) as never)}, 'enabled',
              (select coalesce(max(seq), 0) from events), now(), now())
      returning *`;
    return { row: row as EndpointRow, secret };
  }

  async list(p: Principal, page: Page) {
    const owner = ownerSeen(p);
    const mine = owner === undefined ? this.db`true` : this.db`owner = ${owner}`;
    const rows = (await this.db`select * from webhook_endpoints where ${mine}
      ${page.cursor ? this.db`and (created_at, id) < (select created_at, id from webhook_endpoints where id = ${page.cursor} and ${mine})` : this.db``}
      order by created_at desc, id desc limit ${page.limit + 1}`) as unknown as EndpointRow[];
    const items = rows.slice(0, page.limit);
    return { items: items.map(endpointView), nextCursor: rows.length > page.limit ? items[items.length - 1]!.id : null };
  }

  /** The endpoint, if this principal may see it; another owner's answers as a missing one. */
  async get(p: Principal, id: string, sql: Queryable = this.db): Promise<EndpointRow> {
    const owner = ownerSeen(p);
    const [row] = await sql`select * from webhook_endpoints where id = ${id} ${owner === undefined ? sql`` : sql`and owner = ${owner}`}`;
    if (!row) throw NOT_FOUND();
    return row as EndpointRow;
  }

  async disable(p: Principal, id: string, sql: Queryable): Promise<EndpointRow> {
    await this.get(p, id, sql);
    const [row] = await sql`update webhook_endpoints set status = 'disabled', disabled_reason = 'manual', disabled_at = now(), updated_at = now()
      where id = ${id} and status = 'enabled' returning *`;
    return (row as EndpointRow | undefined) ?? this.get(p, id, sql);
  }

  /** Enabled again: deliveries waiting resume in order, and the failure count starts over. */
  async enable(p: Principal, id: string, sql: Queryable): Promise<EndpointRow> {
    const current = await this.get(p, id, sql);
    if (current.status === "enabled") return current;
    const owner = current.owner;
    const [{ n }] = (await sql`select count(*)::int as n from webhook_endpoints where owner = ${owner} and status = 'enabled'`) as unknown as [{ n: number }];
    if (n >= this.settings.endpointsMax) throw new CofferError("LIMIT_EXCEEDED", `at most ${this.settings.endpointsMax} enabled webhook endpoints per owner; disable one first`);
    // Its waiting deliveries were not attempted while it was off: they are due now.
    await sql`update webhook_deliveries set next_attempt_at = now() where endpoint_id = ${id} and status = 'pending' and next_attempt_at > now()`;
    const [row] = await sql`update webhook_endpoints set status = 'enabled', disabled_reason = null, disabled_at = null,
      consecutive_failures = 0, failing_since = null, updated_at = now() where id = ${id} returning *`;
    return row as EndpointRow;
  }

  /** The endpoint's deliveries, newest first, each with its attempts (the delivery log). */
  async deliveries(p: Principal, endpointId: string, page: Page & { status?: string | undefined }) {
    await this.get(p, endpointId);
    const byStatus = page.status ? this.db`and status = ${page.status}` : this.db``;
    const rows = (await this.db`select id, endpoint_id, event_id, event_type, aggregate_id, redelivery_of, status, next_attempt_at, created_at, delivered_at
      from webhook_deliveries where endpoint_id = ${endpointId} ${byStatus}
      ${page.cursor ? this.db`and (created_at, id) < (select created_at, id from webhook_deliveries where id = ${page.cursor} and endpoint_id = ${endpointId})` : this.db``}
      order by created_at desc, id desc limit ${page.limit + 1}`) as unknown as DeliveryRow[];
    const items = rows.slice(0, page.limit);
    const attempts = await this.attemptsOf(items.map((d) => d.id));
    return { items: items.map((d) => deliveryView(d, attempts.get(d.id) ?? [])), nextCursor: rows.length > page.limit ? items[items.length - 1]!.id : null };
  }

  /**
   * Send a delivery's event again, now and beside the line (a row of its own; the original keeps its
   * own status and schedule), to an endpoint that is enabled. The event id is the same, so a receiver
   * that already has it sees a duplicate it already knows how to drop.
   */
  async redeliver(p: Principal, deliveryId: string, sql: Queryable) {
    const owner = ownerSeen(p);
    const [original] = (await sql`select d.*, e.status as endpoint_status from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id
      where d.id = ${deliveryId} ${owner === undefined ? sql`` : sql`and e.owner = ${owner}`}`) as unknown as (DeliveryRow & { event_seq: string; endpoint_status: string })[];
    if (!original) throw new CofferError("NOT_FOUND", "webhook delivery not found");
    if (original.endpoint_status !== "enabled") throw new CofferError("INVALID_TRANSITION", "the endpoint is disabled: enable it first");
    const [row] = await sql`insert into webhook_deliveries (id, endpoint_id, event_seq, event_id, event_type, aggregate_id, redelivery_of, status, next_attempt_at, created_at)
      values (${Bun.randomUUIDv7()}, ${original.endpoint_id}, ${original.event_seq}, ${original.event_id}, ${original.event_type}, ${original.aggregate_id},
              ${original.redelivery_of ?? original.id}, 'pending', now(), now())
      returning id, endpoint_id, event_id, event_type, aggregate_id, redelivery_of, status, next_attempt_at, created_at, delivered_at`;
    return deliveryView(row as DeliveryRow, []);
  }

  private async attemptsOf(ids: string[]): Promise<Map<string, AttemptRow[]>> {
    const byDelivery = new Map<string, AttemptRow[]>();
    if (!ids.length) return byDelivery;
    const rows = (await this.db`select delivery_id, attempt, at, status_code, latency_ms, error from webhook_attempts
      where delivery_id in ${this.db(ids)} order by delivery_id, attempt`) as unknown as AttemptRow[];
    for (const r of rows) byDelivery.set(r.delivery_id, [...(byDelivery.get(r.delivery_id) ?? []), r]);
    return byDelivery;
  }
}

/** Whose endpoints a principal sees: a service its own; admins and auditors every one (undefined). */
function ownerSeen(p: Principal): string | undefined {
  return p.role === "admin" || p.role === "auditor" ? undefined : scopeOf(p);
}
