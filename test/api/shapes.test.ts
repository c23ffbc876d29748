import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { z } from "zod";
import { operationNamed } from "../../src/api/operations";
import { ChamaView, ChamaWithdrawalPage, ChamaWithdrawalView, MemberList, MemberView, TransferView, WalletPage, WalletView, WithdrawalView } from "../../src/api/outputs";
import { ADMIN, people, user, type As } from "../support/auth";
import { startTestNode, type TestNode } from "../support/node";

/**
 * One resource, one shape: every route that answers with a wallet, a withdrawal, a transfer, a
 * chama, a chama withdrawal or a member answers with the same fields a read of that object shows
 * at that moment (its create, its steps, its GET, its list items), and the table declares one
 * output schema per resource for all of them.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("shapes");
});
afterAll(() => t.stop());

const BANK = { type: "bank", account: "DE89 3704 0044 0532 0130 00" };
const keys = (o: Record<string, unknown>) => Object.keys(o).sort();

async function ok(method: string, path: string, body?: unknown, as: As = ADMIN): Promise<any> {
  const res = await t.api(method, path, body, { as });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** An answer about an object has the keys a read of it shows right after (and the same values where both hold it). */
async function sameShapeAsRead(what: string, answer: Record<string, unknown>, readPath: string, as: As = ADMIN): Promise<void> {
  const read = await ok("GET", readPath, undefined, as);
  expect({ what, keys: keys(answer) }).toEqual({ what, keys: keys(read) });
}

describe("the table declares one schema per resource", () => {
  const uses = (schema: z.ZodType, names: string[]) => {
    for (const name of names) expect({ name, same: operationNamed(name)?.output === schema }).toEqual({ name, same: true });
  };
  test("every operation that answers with a resource answers with its one schema", () => {
    uses(WalletView, ["wallets.create", "wallets.get", "wallets.freeze", "wallets.unfreeze", "wallets.close"]);
    uses(WithdrawalView, ["wallets.withdrawals.create", "withdrawals.get", "withdrawals.process", "withdrawals.complete", "withdrawals.fail", "withdrawals.cancel"]);
    uses(TransferView, ["transfers.create", "transfers.get"]);
    uses(ChamaView, ["chamas.create", "chamas.get", "chamas.freeze", "chamas.unfreeze", "chamas.close", "chamas.rules"]);
    uses(ChamaWithdrawalView, [
      "chamas.withdrawals.create",
      "chamas.withdrawals.get",
      "chamas.withdrawals.approve",
      "chamas.withdrawals.reject",
      "chamas.withdrawals.park",
      "chamas.withdrawals.continue",
      "chamas.withdrawals.cancel",
      "chamas.withdrawals.complete",
      "chamas.withdrawals.fail",
    ]);
    uses(MemberView, ["chamas.members.add", "chamas.members.get", "chamas.members.remove", "chamas.members.role", "chamas.invitations.create", "chamas.invitations.accept"]);
    expect(ChamaWithdrawalPage.shape.items.element).toBe(ChamaWithdrawalView);
    expect(WalletPage.shape.items.element).toBe(WalletView);
    expect(MemberList.shape.items.element).toBe(MemberView);
  });
});

describe("answers about an object have the shape its read has", () => {
  test("a wallet: opened, frozen, unfrozen, closed", async () => {
    const wallet = await ok("POST", "/v1/wallets", { ownerId: "shape-owner", asset: "USD" });
    await sameShapeAsRead("wallets.create", wallet, `/v1/wallets/${wallet.id}`);
    expect(wallet.version).toBe(1);
    const frozen = await ok("POST", `/v1/wallets/${wallet.id}/freeze`);
    await sameShapeAsRead("wallets.freeze", frozen, `/v1/wallets/${wallet.id}`);
    expect(frozen.version).toBe((await ok("GET", `/v1/wallets/${wallet.id}`)).version);
    await sameShapeAsRead("wallets.unfreeze", await ok("POST", `/v1/wallets/${wallet.id}/unfreeze`), `/v1/wallets/${wallet.id}`);
    await sameShapeAsRead("wallets.close", await ok("POST", `/v1/wallets/${wallet.id}/close`), `/v1/wallets/${wallet.id}`);
  });

  test("a withdrawal: requested, processing, completed; failed with a reason; cancelled", async () => {
    const wallet = (await ok("POST", "/v1/wallets", { ownerId: "shape-owner", asset: "EUR" })).id;
    await ok("POST", `/v1/wallets/${wallet}/credits`, { amount: "50.00" });
    const read = (id: string) => `/v1/withdrawals/${id}`;

    const w = await ok("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "5.00", destination: BANK });
    await sameShapeAsRead("wallets.withdrawals.create", w, read(w.id));
    for (const step of ["process", "complete"]) {
      const answer = await ok("POST", `/v1/withdrawals/${w.id}/${step}`);
      await sameShapeAsRead(`withdrawals.${step}`, answer, read(w.id));
      expect({ destination: answer.destination, createdAt: answer.createdAt }).toEqual({ destination: w.destination, createdAt: w.createdAt });
    }
    const failing = await ok("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK });
    await sameShapeAsRead("withdrawals.fail", await ok("POST", `/v1/withdrawals/${failing.id}/fail`, { reason: "bank refused" }), read(failing.id));
    const cancelling = await ok("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK });
    await sameShapeAsRead("withdrawals.cancel", await ok("POST", `/v1/withdrawals/${cancelling.id}/cancel`), read(cancelling.id));
  });

  test("a step's replay has the one shape too", async () => {
    const wallet = (await ok("POST", "/v1/wallets", { ownerId: "shape-owner", asset: "USD" })).id;
    await ok("POST", `/v1/wallets/${wallet}/credits`, { amount: "5.00" });
    const w = await ok("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: BANK });
    const first = await t.api("POST", `/v1/withdrawals/${w.id}/cancel`, {}, { key: `replay-${w.id}` });
    const again = await t.api("POST", `/v1/withdrawals/${w.id}/cancel`, {}, { key: `replay-${w.id}` });
    expect(again.body).toEqual(first.body);
    await sameShapeAsRead("withdrawals.cancel (replayed)", again.body, `/v1/withdrawals/${w.id}`);
  });

  test("a transfer: created, and as read once settled", async () => {
    const from = (await ok("POST", "/v1/wallets", { ownerId: "shape-a", asset: "USD" })).id;
    const to = (await ok("POST", "/v1/wallets", { ownerId: "shape-b", asset: "USD" })).id;
    await ok("POST", `/v1/wallets/${from}/credits`, { amount: "5.00" });
    const transfer = await ok("POST", "/v1/transfers", { fromWalletId: from, toWalletId: to, amount: "1.00" });
    expect(await t.node.saga.idle()).toBe(true);
    await sameShapeAsRead("transfers.create", transfer, `/v1/transfers/${transfer.id}`);
  });

  test("a chama, its members and its withdrawals through every step", async () => {
    const p = people("a1", "a2", "m1", "inv");
    const a1 = user(p.a1);
    const chama = await ok("POST", "/v1/chamas", { name: "Shapes", asset: "USD" }, a1);
    const at = `/v1/chamas/${chama.id}`;
    await sameShapeAsRead("chamas.create", chama, at, a1);
    const member = (id: string) => `${at}/members/${id}`;
    await sameShapeAsRead("chamas.members.add", await ok("POST", `${at}/members`, { memberId: p.a2, role: "admin" }, a1), member(p.a2), a1);
    await sameShapeAsRead("chamas.members.add", await ok("POST", `${at}/members`, { memberId: p.m1 }, a1), member(p.m1), a1);
    await sameShapeAsRead("chamas.invitations.create", await ok("POST", `${at}/invitations`, { memberId: p.inv }, a1), member(p.inv), a1);
    await sameShapeAsRead("chamas.invitations.accept", await ok("POST", `${at}/invitations/accept`, {}, user(p.inv)), member(p.inv), a1);
    await sameShapeAsRead("chamas.members.role", await ok("POST", `${member(p.inv)}/role`, { role: "admin" }, a1), member(p.inv), a1);
    await sameShapeAsRead("chamas.members.remove", await ok("POST", `${member(p.inv)}/remove`, {}, a1), member(p.inv), a1);
    await sameShapeAsRead("chamas.rules", await ok("POST", `${at}/rules`, { maxPerDay: "500.00" }, a1), at, a1);
    await ok("POST", `${at}/deposits`, { memberId: p.m1, amount: "100.00" });

    const w = (id: string) => `${at}/withdrawals/${id}`;
    const step = async (id: string, name: string, as: As, body: unknown = {}) => {
      const answer = await ok("POST", `${w(id)}/${name}`, body, as);
      await sameShapeAsRead(`chamas.withdrawals.${name}`, answer, w(id), a1);
      return answer;
    };
    const request = async () => {
      const answer = await ok("POST", `${at}/withdrawals`, { amount: "1.00", destination: BANK }, user(p.m1));
      await sameShapeAsRead("chamas.withdrawals.create", answer, w(answer.id), a1);
      return answer.id as string;
    };
    const paid = await request();
    await step(paid, "approve", user(p.a2), { note: "fine" });
    await step(paid, "park", a1, { note: "look again" });
    await step(paid, "approve", user(p.a2));
    await step(paid, "continue", user(p.m1));
    await step(paid, "complete", ADMIN);
    const failed = await request();
    await step(failed, "approve", user(p.a2));
    await step(failed, "continue", user(p.m1));
    await step(failed, "fail", ADMIN, { reason: "bank refused" });
    await step(await request(), "reject", user(p.a2), { note: "no" });
    await step(await request(), "cancel", user(p.m1), { reason: "changed my mind" });

    for (const name of ["freeze", "unfreeze"]) await sameShapeAsRead(`chamas.${name}`, await ok("POST", `${at}/${name}`, {}, a1), at, a1);
  });
});
