import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { people, user, type As } from "../support/auth";
import { startTestNode, type ApiResponse, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";

/**
 * Finding your things: GET /v1/wallets and GET /v1/chamas. A user lists their own; platform
 * readers may name whose (ownerId, memberId) and without a name see everything. Pages are keyset
 * pages, newest first over (createdAt, id): following nextCursor visits every item exactly once, in
 * one order, however many share a creation time.
 */
let t: TestNode;

beforeAll(async () => {
  t = await startTestNode("lists");
});
afterAll(() => t.stop());

const AUDITOR: As = { sub: "auditor-lists", role: "auditor" };
const READER: As = { sub: "svc-lists", role: "service", perms: ["wallets:read", "chamas:read"] };
const WRITER: As = { sub: "svc-lists", role: "service", perms: ["wallets:write", "chamas:write"] };

function ok(res: ApiResponse, status = 200): any {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Every item of a list, following nextCursor (bounded), with the pages' sizes. */
async function all(path: string, as: As, limit: number): Promise<{ items: any[]; pages: number[] }> {
  const items: any[] = [];
  const pages: number[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const body = ok(await t.api("GET", `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, undefined, { as }));
    items.push(...body.items);
    pages.push(body.items.length);
    cursor = body.nextCursor;
    if (!cursor) return { items, pages };
  }
  throw new Error("more than 100 pages");
}

describe("GET /v1/wallets", () => {
  const p = people("owner", "other");
  const mine: string[] = [];
  const theirs: string[] = [];

  beforeAll(async () => {
    // Twelve at once (several may share a creation time), then one by one.
    mine.push(...(await Promise.all(Array.from({ length: 12 }, () => t.api("POST", "/v1/wallets", { ownerId: p.owner, asset: "USD" })))).map((r) => ok(r, 201).id));
    for (let i = 0; i < 3; i++) mine.push(ok(await t.api("POST", "/v1/wallets", { ownerId: p.owner, asset: i ? "EUR" : "KES" }), 201).id);
    for (let i = 0; i < 2; i++) theirs.push(ok(await t.api("POST", "/v1/wallets", { ownerId: p.other, asset: "USD" }), 201).id);
  });

  test("a user lists their own wallets, newest first, every one exactly once across pages of 1, 4 and 200", async () => {
    const reads = await Promise.all(mine.map(async (id) => ok(await t.api("GET", `/v1/wallets/${id}`))));
    for (const limit of [1, 4, 200]) {
      const { items, pages } = await all("/v1/wallets", user(p.owner), limit);
      expect(items.map((w) => w.id).sort()).toEqual([...mine].sort());
      expect(pages.every((n) => n <= limit)).toBe(true);
      // Each item is the wallet as a read shows it.
      expect([...items].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual([...reads].sort((a, b) => (a.id < b.id ? -1 : 1)));
      const [first] = await t.node.db`select created_at from wallets where id = ${items[0].id}`;
      const [last] = await t.node.db`select created_at from wallets where id = ${items.at(-1).id}`;
      expect(first!.created_at >= last!.created_at).toBe(true);
    }
    const rows = await t.node.db`select id from wallets where owner_id = ${p.owner} order by created_at desc, id desc`;
    expect((await all("/v1/wallets", user(p.owner), 5)).items.map((w) => w.id)).toEqual(rows.map((r) => r.id));
  });

  test("ownerId: the user's own is the same list; anyone else's is 403 FORBIDDEN", async () => {
    expect((await all(`/v1/wallets?ownerId=${p.owner}`, user(p.owner), 50)).items.map((w) => w.id).sort()).toEqual([...mine].sort());
    const refused = await t.api("GET", `/v1/wallets?ownerId=${p.other}`, undefined, { as: user(p.owner) });
    expectProblem(refused, 403, "FORBIDDEN");
    expect(JSON.stringify(refused.body.detail)).not.toContain(p.other);
  });

  test("admins, auditors and services with wallets:read list anyone's by ownerId, and every wallet without it", async () => {
    for (const as of [{ sub: "admin-lists", role: "admin" } as As, AUDITOR, READER]) {
      expect((await all(`/v1/wallets?ownerId=${p.other}`, as, 1)).items.map((w) => w.id).sort()).toEqual([...theirs].sort());
      const every = (await all("/v1/wallets", as, 200)).items.map((w) => w.id);
      for (const id of [...mine, ...theirs]) expect(every).toContain(id);
      expect(new Set(every).size).toBe(every.length);
    }
    expectProblem(await t.api("GET", "/v1/wallets", undefined, { as: WRITER }), 403, "FORBIDDEN");
  });

  test("someone with no wallet gets an empty page; another's wallet as a cursor finds no place (an empty page)", async () => {
    expect(ok(await t.api("GET", "/v1/wallets", undefined, { as: user(`nobody-${crypto.randomUUID()}`) }))).toEqual({ items: [], nextCursor: null });
    expect(ok(await t.api("GET", `/v1/wallets?cursor=${theirs[0]}`, undefined, { as: user(p.owner) }))).toEqual({ items: [], nextCursor: null });
  });

  test("bad limits and cursors are 400", async () => {
    for (const q of ["limit=0", "limit=201", "limit=x", "cursor=12", "cursor=' or 1=1", "ownerId=a b", "status=active"]) {
      expectProblem(await t.api("GET", `/v1/wallets?${encodeURI(q)}`, undefined, { as: user(p.owner) }), 400, "VALIDATION_FAILED");
    }
  });
});

describe("GET /v1/chamas", () => {
  const p = people("me", "admin", "stranger");
  const chamas: Record<string, string> = {};

  async function chama(name: string, admin: string): Promise<string> {
    return ok(await t.api("POST", "/v1/chamas", { name, asset: "KES" }, { as: user(admin) }), 201).id;
  }
  const as = (who: string) => ({ as: user(who) });

  beforeAll(async () => {
    chamas.founded = await chama("founded", p.me);
    chamas.member = await chama("member", p.admin);
    ok(await t.api("POST", `/v1/chamas/${chamas.member}/members`, { memberId: p.me }, as(p.admin)), 201);
    chamas.invited = await chama("invited", p.admin);
    ok(await t.api("POST", `/v1/chamas/${chamas.invited}/invitations`, { memberId: p.me, role: "admin" }, as(p.admin)), 201);
    chamas.left = await chama("left", p.admin);
    ok(await t.api("POST", `/v1/chamas/${chamas.left}/members`, { memberId: p.me }, as(p.admin)), 201);
    ok(await t.api("POST", `/v1/chamas/${chamas.left}/members/${p.me}/remove`, {}, as(p.me)));
    chamas.revoked = await chama("revoked", p.admin);
    ok(await t.api("POST", `/v1/chamas/${chamas.revoked}/invitations`, { memberId: p.me }, as(p.admin)), 201);
    ok(await t.api("POST", `/v1/chamas/${chamas.revoked}/members/${p.me}/remove`, {}, as(p.admin)));
    chamas.notMine = await chama("not mine", p.admin);
    // Enough more to cross page boundaries (9 → 10 → 11) with small pages.
    for (let i = 0; i < 8; i++) chamas[`more${i}`] = await chama(`more ${i}`, p.me);
  });

  test("a user lists the chamas they belong to, belonged to or are invited to, with their role and standing; not a revoked invitation", async () => {
    const { items } = await all("/v1/chamas", user(p.me), 200);
    const byName = Object.fromEntries(items.map((c) => [c.name, c]));
    expect(Object.keys(byName).sort()).toEqual(["founded", "member", "invited", "left", ...Array.from({ length: 8 }, (_, i) => `more ${i}`)].sort());
    expect(byName.founded).toEqual({ id: chamas.founded, name: "founded", asset: "KES", status: "active", createdAt: expect.any(String), member: { memberId: p.me, role: "admin", status: "member" } });
    expect(byName.member.member).toEqual({ memberId: p.me, role: "member", status: "member" });
    expect(byName.invited.member).toEqual({ memberId: p.me, role: "admin", status: "invited" });
    expect(byName.left.member).toEqual({ memberId: p.me, role: null, status: "former" });
    const rows = await t.node.db`select c.id from chama_members m join chamas c on c.id = m.chama_id
      where m.member_id = ${p.me} and m.status <> 'revoked' order by c.created_at desc, c.id desc`;
    expect(items.map((c) => c.id)).toEqual(rows.map((r) => r.id));
  });

  test("pages of 1, 3 and 5 visit every chama exactly once, in the same order", async () => {
    const whole = (await all("/v1/chamas", user(p.me), 200)).items.map((c) => c.id);
    expect(whole).toHaveLength(12);
    for (const limit of [1, 3, 5]) {
      const { items, pages } = await all("/v1/chamas", user(p.me), limit);
      expect(items.map((c) => c.id)).toEqual(whole);
      expect(pages.slice(0, -1).every((n) => n === limit)).toBe(true);
    }
  });

  test("a stranger lists nothing of them; naming someone else is 403; a cursor not theirs finds no place", async () => {
    expect(ok(await t.api("GET", "/v1/chamas", undefined, as(p.stranger)))).toEqual({ items: [], nextCursor: null });
    expectProblem(await t.api("GET", `/v1/chamas?memberId=${p.me}`, undefined, as(p.stranger)), 403, "FORBIDDEN");
    expect(ok(await t.api("GET", `/v1/chamas?cursor=${chamas.notMine}`, undefined, as(p.me)))).toEqual({ items: [], nextCursor: null });
  });

  test("platform readers list anyone's by memberId, and every chama (without standing) when they name no one", async () => {
    for (const reader of [{ sub: "admin-lists", role: "admin" } as As, AUDITOR, READER]) {
      const named = (await all(`/v1/chamas?memberId=${p.admin}`, reader, 2)).items;
      expect(named.map((c) => c.name).sort()).toEqual(["invited", "left", "member", "not mine", "revoked"].sort());
      expect(named.every((c) => c.member.memberId === p.admin && c.member.role === "admin")).toBe(true);
      const every = (await all("/v1/chamas", reader, 200)).items;
      for (const id of Object.values(chamas)) expect(every.map((c) => c.id)).toContain(id);
      expect(every.every((c) => c.member === undefined)).toBe(true);
    }
    expectProblem(await t.api("GET", "/v1/chamas", undefined, { as: WRITER }), 403, "FORBIDDEN");
  });
});
