import type { Hono } from "hono";
import { getWithdrawal } from "../api/queries";
import { RequestWithdrawal, Uuid, WithdrawalStepBody } from "../api/schemas";
import { callerOf, principalOf } from "./auth";
import type { HttpDeps } from "./deps";
import { body, idempotencyKey, parse, send } from "./respond";

export function registerWithdrawals(app: Hono, { db, ops }: HttpDeps): void {
  app.post("/v1/wallets/:id/withdrawals", async (c) => {
    const key = idempotencyKey(c);
    const id = parse(Uuid, c.req.param("id"), "path.id");
    return send(c, await ops.requestWithdrawal(callerOf(c), key, id, await body(c, RequestWithdrawal)));
  });

  app.get("/v1/withdrawals/:id", async (c) => c.json(await getWithdrawal(db, principalOf(c), parse(Uuid, c.req.param("id"), "path.id"))));

  // Processors drive these until the real payout pipelines exist.
  for (const step of ["process", "complete", "fail", "cancel"] as const) {
    app.post(`/v1/withdrawals/:id/${step}`, async (c) => {
      const key = idempotencyKey(c);
      const id = parse(Uuid, c.req.param("id"), "path.id");
      const input = await body(c, WithdrawalStepBody, { optional: true });
      return send(c, await ops.stepWithdrawal(callerOf(c), key, id, step, input?.reason));
    });
  }
}
