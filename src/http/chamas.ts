import type { Hono } from "hono";
import { getChama, getChamaWithdrawal, getMember, listAudit, listChamaWithdrawals, listMembers } from "../api/chama-queries";
import {
  AddMember,
  AuditQuery,
  ChamaDeposit,
  ChamaStepBody,
  ChamaWithdrawalQuery,
  ChangeRole,
  ChangeRules,
  CreateChama,
  EmptyBody,
  MemberId,
  RemoveMember,
  RequestWithdrawal,
  ReviewBody,
  Uuid,
} from "../api/schemas";
import { callerOf, principalOf } from "./auth";
import type { HttpDeps } from "./deps";
import { body, idempotencyKey, parse, send } from "./respond";
import type { Context } from "hono";

const chamaIdOf = (c: Context) => parse(Uuid, c.req.param("id"), "path.id");
const memberIdOf = (c: Context) => parse(MemberId, c.req.param("memberId"), "path.memberId");
const withdrawalIdOf = (c: Context) => parse(Uuid, c.req.param("withdrawalId"), "path.withdrawalId");

/** Chamas (group wallets): members, rules, deposits, and withdrawals that need the group's consent. */
export function registerChamas(app: Hono, { db, chamas }: HttpDeps): void {
  app.post("/v1/chamas", async (c) => {
    const key = idempotencyKey(c);
    return send(c, await chamas.create(callerOf(c), key, await body(c, CreateChama)));
  });
  app.get("/v1/chamas/:id", async (c) => c.json(await getChama(db, principalOf(c), chamaIdOf(c))));

  for (const action of ["freeze", "unfreeze", "close"] as const) {
    app.post(`/v1/chamas/:id/${action}`, async (c) => {
      const key = idempotencyKey(c);
      const id = chamaIdOf(c);
      await body(c, EmptyBody, { optional: true });
      return send(c, await chamas.setStatus(callerOf(c), key, id, action));
    });
  }

  app.post("/v1/chamas/:id/invitations", async (c) => {
    const key = idempotencyKey(c);
    const id = chamaIdOf(c);
    return send(c, await chamas.invite(callerOf(c), key, id, await body(c, AddMember)));
  });
  app.post("/v1/chamas/:id/invitations/accept", async (c) => {
    const key = idempotencyKey(c);
    const id = chamaIdOf(c);
    await body(c, EmptyBody, { optional: true });
    return send(c, await chamas.accept(callerOf(c), key, id));
  });
  app.post("/v1/chamas/:id/members", async (c) => {
    const key = idempotencyKey(c);
    const id = chamaIdOf(c);
    return send(c, await chamas.addMember(callerOf(c), key, id, await body(c, AddMember)));
  });
  app.get("/v1/chamas/:id/members", async (c) => c.json({ items: await listMembers(db, principalOf(c), chamaIdOf(c)) }));
  app.get("/v1/chamas/:id/members/:memberId", async (c) => c.json(await getMember(db, principalOf(c), chamaIdOf(c), memberIdOf(c))));
  app.post("/v1/chamas/:id/members/:memberId/remove", async (c) => {
    const key = idempotencyKey(c);
    const [id, memberId] = [chamaIdOf(c), memberIdOf(c)];
    const input = await body(c, RemoveMember, { optional: true });
    return send(c, await chamas.removeMember(callerOf(c), key, id, memberId, input?.reason));
  });
  app.post("/v1/chamas/:id/members/:memberId/role", async (c) => {
    const key = idempotencyKey(c);
    const [id, memberId] = [chamaIdOf(c), memberIdOf(c)];
    return send(c, await chamas.changeRole(callerOf(c), key, id, memberId, (await body(c, ChangeRole)).role));
  });

  app.post("/v1/chamas/:id/rules", async (c) => {
    const key = idempotencyKey(c);
    const id = chamaIdOf(c);
    return send(c, await chamas.changeRules(callerOf(c), key, id, await body(c, ChangeRules)));
  });
  app.post("/v1/chamas/:id/deposits", async (c) => {
    const key = idempotencyKey(c);
    const id = chamaIdOf(c);
    return send(c, await chamas.deposit(callerOf(c), key, id, await body(c, ChamaDeposit)));
  });

  app.post("/v1/chamas/:id/withdrawals", async (c) => {
    const key = idempotencyKey(c);
    const id = chamaIdOf(c);
    return send(c, await chamas.requestWithdrawal(callerOf(c), key, id, await body(c, RequestWithdrawal)));
  });
  app.get("/v1/chamas/:id/withdrawals", async (c) => {
    const id = chamaIdOf(c);
    const q = parse(ChamaWithdrawalQuery, c.req.query(), "query");
    return c.json(await listChamaWithdrawals(db, principalOf(c), id, { status: q.status, pageSize: q.limit, cursor: q.cursor }));
  });
  app.get("/v1/chamas/:id/withdrawals/:withdrawalId", async (c) => c.json(await getChamaWithdrawal(db, principalOf(c), chamaIdOf(c), withdrawalIdOf(c))));
  for (const decision of ["approve", "reject"] as const) {
    app.post(`/v1/chamas/:id/withdrawals/:withdrawalId/${decision}`, async (c) => {
      const key = idempotencyKey(c);
      const [id, withdrawalId] = [chamaIdOf(c), withdrawalIdOf(c)];
      const input = await body(c, ReviewBody, { optional: true });
      return send(c, await chamas.review(callerOf(c), key, id, withdrawalId, decision, input?.note));
    });
  }
  // park takes a note (why it looks wrong); cancel and fail take a reason; continue and complete take nothing.
  for (const step of ["park", "continue", "cancel", "complete", "fail"] as const) {
    app.post(`/v1/chamas/:id/withdrawals/:withdrawalId/${step}`, async (c) => {
      const key = idempotencyKey(c);
      const [id, withdrawalId] = [chamaIdOf(c), withdrawalIdOf(c)];
      const text = step === "park" ? (await body(c, ReviewBody, { optional: true }))?.note
        : step === "cancel" || step === "fail" ? (await body(c, ChamaStepBody, { optional: true }))?.reason
        : void (await body(c, EmptyBody, { optional: true }));
      return send(c, await chamas.step(callerOf(c), key, id, withdrawalId, step, text));
    });
  }

  app.get("/v1/chamas/:id/audit", async (c) => {
    const id = chamaIdOf(c);
    const q = parse(AuditQuery, c.req.query(), "query");
    return c.json(await listAudit(db, principalOf(c), id, q.limit, q.cursor));
  });
}
