import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectRefusedAndUnchanged, newChama, people, startChamaNode, type ChamaNode } from "./support";

/**
 * A command that names a member (a deposit's, a role change's, a removal's) and names someone the
 * chama does not have is refused for that member, 404 MEMBER_NOT_FOUND naming them: not as if the
 * caller were the stranger (403 NOT_A_MEMBER "the caller is not a member").
 */
let n: ChamaNode;
beforeAll(async () => {
  n = await startChamaNode("namedmember");
});
afterAll(() => n.t.stop());

describe("a member named who is not in the chama", () => {
  test("a platform admin recording a deposit for a non-member gets 404 MEMBER_NOT_FOUND naming the member", async () => {
    const p = people("a1", "m1", "ghost");
    const c = await newChama(n.t, { admins: [p.a1], members: [p.m1] });
    let res;
    await expectRefusedAndUnchanged(c, async () => (res = await c.call("POST", "/deposits", { memberId: p.ghost, amount: "5.00" })), 404, "MEMBER_NOT_FOUND");
    expect(res!.body.detail).toBe(`no member ${p.ghost} in this chama`);
  });

  test("a deposit for someone only invited says they are invited, not yet a member", async () => {
    const p = people("a1", "inv");
    const c = await newChama(n.t, { admins: [p.a1] });
    expect((await c.call("POST", "/invitations", { memberId: p.inv }, p.a1)).status).toBe(201);
    const res = await c.call("POST", "/deposits", { memberId: p.inv, amount: "5.00" });
    expect({ status: res.status, code: res.body.code, detail: res.body.detail }).toEqual({
      status: 404,
      code: "MEMBER_NOT_FOUND",
      detail: `no member ${p.inv} in this chama (they are invited, not yet a member)`,
    });
  });

  test("an admin changing the role of, or removing, someone the chama does not have gets 404 MEMBER_NOT_FOUND naming them", async () => {
    const p = people("a1", "ghost");
    const c = await newChama(n.t, { admins: [p.a1] });
    let role;
    await expectRefusedAndUnchanged(c, async () => (role = await c.call("POST", `/members/${p.ghost}/role`, { role: "admin" }, p.a1)), 404, "MEMBER_NOT_FOUND");
    expect(role!.body.detail).toBe(`no member ${p.ghost} in this chama`);
    let removal;
    await expectRefusedAndUnchanged(c, async () => (removal = await c.call("POST", `/members/${p.ghost}/remove`, {}, p.a1)), 404, "MEMBER_NOT_FOUND");
    expect(removal!.body.detail).toBe(`no member ${p.ghost} in this chama`);
  });

  test("a caller who is not a member is still told so: 403 NOT_A_MEMBER", async () => {
    const p = people("a1", "m1");
    const c = await newChama(n.t, { admins: [p.a1], members: [p.m1] });
    // A platform admin is not a member: a role change is theirs to make only as one.
    await expectRefusedAndUnchanged(c, () => c.call("POST", `/members/${p.m1}/role`, { role: "admin" }), 403, "NOT_A_MEMBER");
  });
});
