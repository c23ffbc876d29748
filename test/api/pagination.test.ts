import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { forEachBounded } from "../support/bounded";
import { people, user } from "../support/auth";
import { startTestNode, type Api, type TestNode } from "../support/node";

/**
 * Cursor pages over long lists: every item exactly once, in order, whatever the page size, across
 * the places where a number gains a digit (9 → 10, 99 → 100, 999 → 1000). A sequence compared or
 * sorted as text breaks exactly there ("10" < "9"). The node has a database to itself, so the
 * sequences of the lists built here start at 1 and cross those boundaries.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("pagination");
});
afterAll(() => t.stop());

const CALLERS = 32;
const ITEMS = 1_005;
const PAGES_MAX = 2_000;

/** Every item of a listing, following nextCursor page by page (bounded), and how many pages it took. */
async function allPages(api: Api, path: string, limit: number, as?: string): Promise<{ items: any[]; pages: number }> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let pages = 1; pages <= PAGES_MAX; pages++) {
    const res = await api("GET", `${path}${path.includes("?") ? "&" : "?"}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, undefined, as ? { as: user(as) } : {});
    if (res.status !== 200) throw new Error(`${path} page ${pages}: ${res.status} ${JSON.stringify(res.body)}`);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    items.push(...res.body.items);
    if (!res.body.nextCursor) return { items, pages };
    expect(res.body.items.length).toBe(limit);
    cursor = res.body.nextCursor;
  }
  throw new Error(`${path}: more than ${PAGES_MAX} pages`);
}

async function post(api: Api, path: string, body: unknown, as?: string): Promise<any> {
  const res = await api("POST", path, body, as ? { as: user(as) } : {});
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

describe("a wallet's transactions", () => {
  test("pages of any size list every posting once, newest first, across posting id 9 → 10, 99 → 100 and 999 → 1000", async () => {
    const created = await post(t.api, "/v1/wallets", { ownerId: "pager", asset: "USD" });
    await forEachBounded(Array.from({ length: ITEMS }), CALLERS, async (_, i) => {
      await post(t.api, `/v1/wallets/${created.id}/credits`, { amount: "0.01", reference: `c-${i}` });
    });

    // The order the ledger holds them in: by posting id, newest first.
    const rows = await t.node.db`select p.id::text as id, j.reference from postings p join journals j on j.id = p.journal_id
      where p.account = ${created.id} order by p.id desc`;
    expect(rows.length).toBe(ITEMS);
    const ids = rows.map((r) => BigInt(r.id));
    // Each credit is two postings (the wallet's and the clearing account's), so the wallet's ids step by about 2: its pages still cross every boundary.
    for (const [below, above] of [[9n, 10n], [99n, 100n], [999n, 1000n]] as const) {
      expect(ids.some((id) => id <= below) && ids.some((id) => id >= above)).toBe(true);
    }

    for (const limit of [7, 10, 200]) {
      const { items, pages } = await allPages(t.api, `/v1/wallets/${created.id}/transactions`, limit);
      expect(items.map((r) => r.reference)).toEqual(rows.map((r) => r.reference));
      expect(pages).toBe(Math.ceil(ITEMS / limit));
    }
  });
});

describe("a chama's audit log", () => {
  test("pages of any size list every record once, newest first, across sequence 9 → 10, 99 → 100 and 999 → 1000", async () => {
    const p = people("admin", "member");
    const chama = await post(t.api, "/v1/chamas", { name: "long audit", asset: "USD" }, p.admin);
    const path = `/v1/chamas/${chama.id}`;
    await post(t.api, `${path}/members`, { memberId: p.member }, p.admin);
    // Many small deposits at once, as a busy chama gets them: each one audit record.
    await forEachBounded(Array.from({ length: ITEMS }), CALLERS, async (_, i) => {
      await post(t.api, `${path}/deposits`, { memberId: p.member, amount: "0.01", reference: `d-${i}` });
    });

    const expected = (await t.node.db`select seq::text as seq from chama_audit where chama_id = ${chama.id}`).map((r) => BigInt(r.seq)).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    expect(expected.length).toBe(ITEMS + 2); // opened, a member added, the deposits
    for (const boundary of [9n, 10n, 99n, 100n, 999n, 1000n]) expect(expected).toContain(boundary);

    for (const limit of [7, 10, 200]) {
      const { items, pages } = await allPages(t.api, `${path}/audit`, limit, p.admin);
      expect(items.map((r) => BigInt(r.seq))).toEqual(expected);
      expect(pages).toBe(Math.ceil(expected.length / limit));
    }
    // A cursor is the last record seen: from 1000, the next page starts at 999 (not at "1", nor "99").
    const after1000 = await t.api("GET", `${path}/audit?limit=3&cursor=1000`, undefined, { as: user(p.admin) });
    expect(after1000.body.items.map((r: any) => r.seq)).toEqual(["999", "998", "997"]);
    const after10 = await t.api("GET", `${path}/audit?limit=3&cursor=10`, undefined, { as: user(p.admin) });
    expect(after10.body.items.map((r: any) => r.seq)).toEqual(["9", "8", "7"]);
  });
});

describe("a chama's withdrawals", () => {
  test("pages of 9, 10, 99, 100 and 200 list each of 250 withdrawals once, newest first, even when many share a time", async () => {
    // A chama keeps at most 100 open and 1,000 recent withdrawals, so each caller requests one and
    // cancels it before the next: the listing shows every one, whatever its status.
    const WITHDRAWALS = 250;
    const p = people("admin", "member");
    const chama = await post(t.api, "/v1/chamas", { name: "many requests", asset: "USD" }, p.admin);
    const path = `/v1/chamas/${chama.id}`;
    await post(t.api, `${path}/members`, { memberId: p.member }, p.admin);
    await post(t.api, `${path}/deposits`, { memberId: p.member, amount: "20.00" });
    await forEachBounded(Array.from({ length: WITHDRAWALS }), CALLERS, async () => {
      const w = await post(t.api, `${path}/withdrawals`, { amount: "0.01", destination: { type: "bank", account: "DE89370400440532013000" } }, p.member);
      const cancelled = await t.api("POST", `${path}/withdrawals/${w.id}/cancel`, {}, { as: user(p.member) });
      if (cancelled.status !== 200) throw new Error(`cancel: ${cancelled.status} ${JSON.stringify(cancelled.body)}`);
    });

    const rows = await t.node.db`select id from chama_withdrawals where chama_id = ${chama.id} order by created_at desc, id desc`;
    expect(rows.length).toBe(WITHDRAWALS);
    for (const limit of [9, 10, 99, 100, 200]) {
      const { items, pages } = await allPages(t.api, `${path}/withdrawals`, limit, p.member);
      expect(items.map((w) => w.id)).toEqual(rows.map((r) => r.id));
      expect(pages).toBe(Math.ceil(WITHDRAWALS / limit));
    }
  });
});
