import { delayMs } from "../../lib/backoff";
import type { Db } from "../../lib/db";
import { log, reason } from "../../lib/log";
import type { Vault, Sealed } from "../security/encryption";
import { secretAad } from "../webhooks/endpoints";
import { publicData, subscribed } from "../webhooks/event-types";
import { AbortedByCaller, post, type ErrorClass, type Sent } from "../webhooks/sender";
import type { WebhookSettings } from "../webhooks/settings";
import { SIGNATURE_HEADER, signatureHeader } from "../webhooks/signing";
import type { Resolver } from "../webhooks/ssrf";
import { eventsAfter, moveCursor } from "./event-cursor";
import { EVERYTHING, type Ownership } from "./ownership";
import { Pump } from "./pump";

/**
 * Webhooks out: committed events (`events`: the outbox's and the ledger movements that carry theirs) to apps' endpoints, signed, at least once, in order
 * per aggregate (a wallet, a chama, a deposit) per endpoint.
 *
 * 1. Fan-out. Events behind the fan-out's cursor (`event_cursors` 'webhooks'), in (transaction,
 *    seq) order and only what no running transaction can still add to, become one delivery row per
 *    enabled endpoint subscribed to their type and registered before them; the cursor then moves,
 *    in the same transaction (one node at a time: an advisory lock). An aggregate commits one batch
 *    after another, so its events are fanned out in commit order.
 * 2. Dispatch. Per (endpoint, aggregate), only the oldest pending delivery may be attempted: a
 *    delivery that keeps failing holds back the later events of its wallet for that endpoint and
 *    nothing else. A node claims due heads with a lease (so no other node attempts them meanwhile)
 *    within its bounds (attempts in flight per node and per endpoint), and attempts them in the
 *    background. Manual redeliveries are claimed when due, beside the lines.
 * 3. Each attempt POSTs `{id, type, created, data}` (`id` the event's, the same on every attempt,
 *    for the receiver's deduplication) with `Coffer-Signature`, and records its outcome: delivered;
 *    or failed, retried after baseMs·2^(n−1) (at most maxMs) until maxAttempts or maxAge (then
 *    `failed`, given up). Failed attempts in a row count against the endpoint: past
 *    disableAfterFailures over at least disableAfterMs it is disabled, with an alert (an outbox
 *    event `webhook_endpoint.disabled` and a log line).
 *
 * Neither the body nor the secret is ever logged or stored in the log; log lines name endpoints and
 * deliveries by id.
 */
const FANOUT_BATCH = 500;
const FANOUT_LOCK_ID = 72_060_012;
/** A claimed delivery stays leased this long past its time limit (to record the outcome). */
const LEASE_MARGIN_MS = 30_000;
/** How long `stop` waits for attempts in hand once it has aborted them. */
const STOP_WAIT_MS = 5_000;
const USER_AGENT = "Coffer-Webhooks/1";

/** What one attempt, or one delivery's or endpoint's end, came to (metrics: src/monitoring/metrics.ts). */
export type DeliveryOutcome = "delivered" | "failed" | "timed_out" | "refused" | "gave_up" | "disabled";

export interface DeliveryHooks {
  onOutcome?: (outcome: DeliveryOutcome) => void;
  /** Resolves host names (tests); the system resolver by default. */
  resolve?: Resolver;
  /** Extra TLS settings for the connections (tests: a private CA). */
  tls?: { ca?: string };
  /** With several nodes: fans out and attempts only on the holder of the `webhook-delivery` lease (src/workers/ownership.ts). */
  ownership?: Ownership;
}

interface Claimed {
  id: string;
  endpoint_id: string;
  attempts: number;
}

interface Loaded {
  id: string;
  endpoint_id: string;
  attempts: number;
  event_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  event_created_at: Date;
  url: string;
  secret_sealed: Sealed;
}

export class WebhookDelivery {
  private readonly pump: Pump;
  private readonly inFlight = new Map<string, { endpointId: string; done: Promise<void> }>();
  private readonly busyByEndpoint = new Map<string, number>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly vault: Vault,
    private readonly settings: WebhookSettings,
    private readonly hooks: DeliveryHooks = {},
  ) {
    this.pump = new Pump("webhook delivery", () => this.pass(), settings.pollMs);
  }

  kick(): void {
    this.pump.kick();
  }

  async stop(): Promise<void> {
    await this.pump.stop();
    this.stopping.abort();
    const pending = [...this.inFlight.values()].map((f) => f.done);
    await Promise.race([Promise.allSettled(pending), Bun.sleep(STOP_WAIT_MS)]);
  }

  /**
   * Resolves once every committed event is fanned out and no delivery is due or in flight (tests);
   * deliveries waiting for a later retry do not count. False if that did not happen within the time.
   */
  idle(timeoutMs = 30_000): Promise<boolean> {
    return this.pump.until(async () => {
      if (this.inFlight.size) return false;
      const [row] = await this.db`with enabled as (select id from webhook_endpoints where status = 'enabled')
        select exists (select 1 from events e, event_cursors c where c.name = 'webhooks' and (e.xid, e.seq) > (c.xid, c.seq)) as fanning,
          exists (select 1 from (select distinct on (endpoint_id, aggregate_id) next_attempt_at from webhook_deliveries
                                 where status = 'pending' and redelivery_of is null and endpoint_id in (select id from enabled)
                                 order by endpoint_id, aggregate_id, event_seq) h
                  where h.next_attempt_at <= now())
          or exists (select 1 from webhook_deliveries where status = 'pending' and redelivery_of is not null
                     and next_attempt_at <= now() and endpoint_id in (select id from enabled)) as due`;
      return !row!.fanning && !row!.due && this.inFlight.size === 0;
    }, timeoutMs);
  }

  /** One pass: fan out a batch, then start what is due; true when there may be more right away. */
  private async pass(): Promise<boolean> {
    // Another node delivers (its fan-out lock and delivery claims still keep two holders apart).
    if (!(this.hooks.ownership ?? EVERYTHING).leads("webhook-delivery")) return false;
    const more = await this.fanOut();
    const claimedAll = await this.dispatch();
    return more || claimedAll;
  }

  private async fanOut(): Promise<boolean> {
    return (await this.db.begin(async (tx) => {
      const [lock] = await tx`select pg_try_advisory_xact_lock(${FANOUT_LOCK_ID}) as mine`;
      if (!lock!.mine) return false; // another node is fanning out right now
      const rows = await eventsAfter(tx, "webhooks", FANOUT_BATCH);
      if (!rows.length) return false;
      const endpoints = (await tx`select id, events, start_seq::text from webhook_endpoints where status = 'enabled'`) as unknown as { id: string; events: string[]; start_seq: string }[];
      const deliveries: Record<string, unknown>[] = [];
      for (const row of rows) {
        for (const e of endpoints) {
          if (BigInt(row.seq) <= BigInt(e.start_seq) || !subscribed(e.events, row.type)) continue;
          deliveries.push({ id: Bun.randomUUIDv7(), endpoint_id: e.id, event_seq: row.seq, event_id: row.id, event_type: row.type, aggregate_id: row.aggregate_id, status: "pending" });
        }
      }
      // Bounded: a batch of events times the enabled endpoints (each owner has at most endpointsMax).
      for (let i = 0; i < deliveries.length; i += 1_000) {
        const chunk = deliveries.slice(i, i + 1_000);
        // (next_attempt_at and created_at: the database's now(), the clock every due time is compared with)
        await tx`insert into webhook_deliveries ${tx(chunk)}
          on conflict (endpoint_id, event_id) where redelivery_of is null do nothing`;
      }
      await moveCursor(tx, "webhooks", rows[rows.length - 1]!);
      return rows.length === FANOUT_BATCH;
    })) as boolean;
  }

  /** Claims due deliveries within the bounds and starts their attempts; true when every free slot was filled. */
  private async dispatch(): Promise<boolean> {
    const free = this.settings.concurrency - this.inFlight.size;
    if (free <= 0) return false;
    const busyIds = [...this.busyByEndpoint.keys()];
    const busyCounts = busyIds.map((id) => this.busyByEndpoint.get(id)!);
    const leaseS = Math.ceil((this.settings.timeoutMs + LEASE_MARGIN_MS) / 1000);
    const claimed = (await this.db`
      with enabled as (select id from webhook_endpoints where status = 'enabled'),
      heads as (
        select distinct on (d.endpoint_id, d.aggregate_id) d.id, d.endpoint_id, d.next_attempt_at, d.leased_until
        from webhook_deliveries d
        where d.status = 'pending' and d.redelivery_of is null and d.endpoint_id in (select id from enabled)
        order by d.endpoint_id, d.aggregate_id, d.event_seq
      ),
      manual as (
        select d.id, d.endpoint_id, d.next_attempt_at, d.leased_until from webhook_deliveries d
        where d.status = 'pending' and d.redelivery_of is not null and d.next_attempt_at <= now() and d.endpoint_id in (select id from enabled)
      ),
      due as (
        select c.id, c.endpoint_id, c.next_attempt_at,
               row_number() over (partition by c.endpoint_id order by c.next_attempt_at, c.id) as n
        from (select * from heads union all select * from manual) c
        where c.next_attempt_at <= now() and (c.leased_until is null or c.leased_until < now())
      ),
      busy as (select * from unnest(${busyIds}::uuid[], ${busyCounts}::int[]) as b(endpoint_id, n)),
      pick as (
        select due.id from due left join busy on busy.endpoint_id = due.endpoint_id
        where due.n <= ${this.settings.perEndpoint} - coalesce(busy.n, 0)
        order by due.next_attempt_at limit ${free}
      )
      update webhook_deliveries d set leased_until = now() + make_interval(secs => ${leaseS}), attempts = d.attempts + 1
      from pick where d.id = pick.id and d.status = 'pending' and (d.leased_until is null or d.leased_until < now())
      returning d.id, d.endpoint_id, d.attempts`) as unknown as Claimed[];
    for (const c of claimed) this.start(c);
    return claimed.length === free;
  }

  private start(c: Claimed): void {
    this.busyByEndpoint.set(c.endpoint_id, (this.busyByEndpoint.get(c.endpoint_id) ?? 0) + 1);
    const done = this.attempt(c)
      .catch((error) => log("warn", "webhook attempt could not be recorded; it will be retried when its lease ends", { deliveryId: c.id, error: reason(error) }))
      .finally(() => {
        this.inFlight.delete(c.id);
        const left = (this.busyByEndpoint.get(c.endpoint_id) ?? 1) - 1;
        if (left > 0) this.busyByEndpoint.set(c.endpoint_id, left);
        else this.busyByEndpoint.delete(c.endpoint_id);
        this.kick(); // the next event of its line, or another waiting delivery
      });
    this.inFlight.set(c.id, { endpointId: c.endpoint_id, done });
  }

  private async attempt(c: Claimed): Promise<void> {
    const [row] = (await this.db`select d.id, d.endpoint_id, d.attempts, o.id as event_id, o.type as event_type, o.payload, o.created_at as event_created_at,
        e.url, e.secret_sealed
      from webhook_deliveries d join events o on o.seq = d.event_seq join webhook_endpoints e on e.id = d.endpoint_id
      where d.id = ${c.id}`) as unknown as Loaded[];
    if (!row) return;
    const body = JSON.stringify({ id: row.event_id, type: row.event_type, created: row.event_created_at.toISOString(), data: publicData(row.payload) });
    const secret = this.vault.open<string>(row.secret_sealed, secretAad(row.endpoint_id));
    const headers = {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      [SIGNATURE_HEADER]: signatureHeader(secret, body),
      "Coffer-Event-Id": row.event_id,
      "Coffer-Delivery-Id": row.id,
      "Coffer-Delivery-Attempt": String(c.attempts),
    };
    const at = new Date();
    let sent: Sent;
    try {
      sent = await post(row.url, body, headers, {
        policy: this.settings.policy,
        timeoutMs: this.settings.timeoutMs,
        bodyMaxBytes: this.settings.bodyMaxBytes,
        signal: this.stopping.signal,
        ...(this.hooks.resolve ? { resolve: this.hooks.resolve } : {}),
        ...(this.hooks.tls ? { tls: this.hooks.tls } : {}),
      });
    } catch (error) {
      if (!(error instanceof AbortedByCaller)) throw error;
      // Stopped by our shutdown, not failed by the receiver: free it for the next node at once.
      await this.db`update webhook_deliveries set leased_until = null where id = ${c.id}`.catch(() => {});
      return;
    }
    await this.record(c, at, sent);
  }

  /** The attempt's outcome, the delivery's next state and the endpoint's failure count, in one transaction. */
  private async record(c: Claimed, at: Date, sent: Sent): Promise<void> {
    const s = this.settings;
    const fatal = sent.error === "too_large";
    const retryS = delayMs(c.attempts, s.retryBaseMs, s.retryMaxMs) / 1000;
    const outcomes: DeliveryOutcome[] = [attemptOutcome(sent.error)];
    await this.db.begin(async (tx) => {
      await tx`insert into webhook_attempts (delivery_id, attempt, at, status_code, latency_ms, error)
        values (${c.id}, ${c.attempts}, ${at}, ${sent.statusCode}, ${sent.latencyMs}, ${sent.error}) on conflict do nothing`;
      const [delivery] = await tx`update webhook_deliveries set
          status = case when ${sent.ok} then 'delivered'
                        when ${fatal} or attempts >= ${s.maxAttempts} or now() - created_at >= make_interval(secs => ${s.maxAgeMs / 1000}) then 'failed'
                        else 'pending' end,
          delivered_at = case when ${sent.ok} then now() else delivered_at end,
          next_attempt_at = case when ${sent.ok} then next_attempt_at else now() + make_interval(secs => ${retryS}) end,
          leased_until = null, last_attempt_at = ${at}, last_status = ${sent.statusCode}, last_error = ${sent.error}
        where id = ${c.id} returning status`;
      if (delivery?.status === "failed") outcomes.push("gave_up");
      if (sent.ok) {
        await tx`update webhook_endpoints set consecutive_failures = 0, failing_since = null where id = ${c.endpoint_id} and consecutive_failures <> 0`;
        return;
      }
      const [endpoint] = await tx`update webhook_endpoints set consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, ${at})
        where id = ${c.endpoint_id}
        returning owner, status, consecutive_failures, failing_since, (now() - coalesce(failing_since, ${at}) >= make_interval(secs => ${s.disableAfterMs / 1000})) as long_enough`;
      if (!endpoint || endpoint.status !== "enabled" || endpoint.consecutive_failures < s.disableAfterFailures || !endpoint.long_enough) return;
      const [disabled] = await tx`update webhook_endpoints set status = 'disabled', disabled_reason = 'failing', disabled_at = now(), updated_at = now()
        where id = ${c.endpoint_id} and status = 'enabled' returning disabled_at`;
      if (!disabled) return;
      const alert = {
        type: "webhook_endpoint.disabled",
        endpointId: c.endpoint_id,
        owner: endpoint.owner as string,
        reason: "failing",
        consecutiveFailures: endpoint.consecutive_failures as number,
        failingSince: (endpoint.failing_since as Date).toISOString(),
        lastError: sent.error,
        at: (disabled.disabled_at as Date).toISOString(),
      };
      await tx`insert into outbox (id, aggregate_id, type, payload, created_at)
        values (${Bun.randomUUIDv7()}, ${c.endpoint_id}, ${alert.type}, ${tx.json(alert)}, ${disabled.disabled_at})`;
      outcomes.push("disabled");
      log("warn", "webhook endpoint disabled after repeated failures", {
        endpointId: c.endpoint_id,
        owner: alert.owner,
        consecutiveFailures: alert.consecutiveFailures,
        failingSince: alert.failingSince,
        lastError: sent.error,
      });
    });
    for (const outcome of outcomes) this.hooks.onOutcome?.(outcome);
  }
}

function attemptOutcome(error: ErrorClass | null): DeliveryOutcome {
  if (error === null) return "delivered";
  if (error === "timeout") return "timed_out";
  if (error === "address_refused") return "refused";
  return "failed";
}
