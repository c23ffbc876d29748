import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { z } from "zod";
import type { Reply } from "../../actors/envelope";
import { CofferError, refusal } from "../../lib/errors";
import { Gate } from "../../lib/gate";
import { log, reason } from "../../lib/log";
import { scopeOf } from "../../lib/principal";
import { execute } from "../api/execute";
import { parseJson } from "../api/input";
import type { OperationDeps } from "../api/operation";
import { operationNamed } from "../api/operations";
import { replyOf } from "../api/reply";
import type { CofferMetrics } from "../monitoring/metrics";
import type { Authenticator } from "../security/authenticator";
import { enforceCaller, type RateLimiter, type TierSettings, tiersFrom } from "../security/rate-limit";

/**
 * The request-reply API for other services: every operation of the table (src/api/operations/) on
 * the subject `<prefix>.v1.<operation name>`, with the same schemas, idempotency rules, error
 * codes, authentication and rate limits as REST, since both hand the request to `execute`.
 *
 * Request: headers `Authorization: Bearer <token | cof_ API key>` (or `X-Api-Key`), and
 * `Idempotency-Key` for every operation that changes something; payload: a JSON object with the
 * fields REST takes in its path, query or body (`walletId`, `amount`, …).
 * Reply: `{"status": <HTTP-style status>, "body": <resource or RFC 9457 problem>}`.
 * Every node subscribes in one queue group, so each request is answered once, by any node.
 */
export interface NatsApiDeps extends OperationDeps {
  authenticator: Authenticator;
  limiter: RateLimiter | undefined;
  limits: TierSettings & { NATS_IN_FLIGHT_MAX: number; NATS_WAITING_MAX: number };
  /** The node's Prometheus metrics; absent: nothing is counted. */
  metrics?: CofferMetrics | undefined;
}

const MAX_PAYLOAD_BYTES = 64 * 1024;
const overloaded: Reply = refusal("OVERLOADED", "this node is answering too many NATS requests; retry with the same idempotency key");

export function startNatsApi(nc: NatsConnection, prefix: string, deps: NatsApiDeps): Subscription {
  const tiers = tiersFrom(deps.limits);
  const root = `${prefix}.v1.`;
  // Requests this node answers at once, and how many may wait: past that, 503 OVERLOADED at once.
  const gate = new Gate({ inFlightMax: deps.limits.NATS_IN_FLIGHT_MAX, waitingMax: deps.limits.NATS_WAITING_MAX });
  return nc.subscribe(`${prefix}.v1.>`, {
    queue: `${prefix}-api`,
    // Nothing a caller publishes may throw out of here: a throw would take the node's reader down.
    callback: (error, msg) => {
      if (error) return;
      try {
        const started = performance.now();
        const name = msg.subject.slice(root.length);
        void gate
          .run(() => answer(msg, name, deps, tiers), () => overloaded)
          .then((outcome) => {
            // By operation name only when it is one: the subject is the caller's to choose.
            deps.metrics?.nats(operationNamed(name) ? name : "unknown", outcome.status, (performance.now() - started) / 1000);
            if (msg.reply) msg.respond(JSON.stringify(outcome));
          })
          .catch(() => {
            // the connection is closing (shutdown): the caller will time out and retry with its key
          });
      } catch (e) {
        log("warn", "security: NATS API message dropped", { error: reason(e) });
      }
    },
  });
}

async function answer(msg: Msg, name: string, deps: NatsApiDeps, tiers: ReturnType<typeof tiersFrom>): Promise<Reply> {
  try {
    const op = operationNamed(name);
    if (!op) throw new CofferError("NOT_FOUND", "no such operation");
    if (msg.data.length > MAX_PAYLOAD_BYTES) throw new CofferError("PAYLOAD_TOO_LARGE", `payloads are limited to ${MAX_PAYLOAD_BYTES} bytes`);
    const principal = await deps.authenticator.principalFor({
      authorization: msg.headers?.get("Authorization") || undefined,
      apiKey: msg.headers?.get("X-Api-Key") || undefined,
    });
    const caller = { scope: scopeOf(principal), principal };
    if (deps.limiter) await enforceCaller(deps.limiter, tiers, caller.scope, principal);
    return await execute(op, deps, { limiter: deps.limiter, tiers }, {
      caller,
      key: msg.headers?.get("Idempotency-Key") || undefined,
      input: parseJson(msg.string(), PAYLOAD, { optional: true, where: "payload" }) ?? {},
      origin: () => "payload",
    });
  } catch (error) {
    return replyOf(error, { subject: msg.subject });
  }
}

/**
 * A JSON object, kept as parsed: a schema that copies it (z.record) would turn an own `__proto__`
 * key into a prototype and hide it from the operation's strict schema.
 */
const PAYLOAD = z
  .custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), "expected a JSON object")
  .optional();
