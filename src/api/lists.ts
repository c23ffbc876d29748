import type { Db } from "../../lib/db";
import { CofferError } from "../../lib/errors";
import type { Principal } from "../../lib/principal";
import { walletView } from "./views";

/**
 * Finding your things: the wallets and the chamas of someone, newest first, a page at a time. A
 * user lists their own (naming anyone else is 403); platform readers (admins, auditors, services
 * with the read permission: the operation's policy check let them in) may name whom, and without a
 * name list everything. Pages are keyset pages over (created_at, id), compared as a time and a
 * uuid; the cursor is the last id of the previous page, and only finds its place among what the
 * same caller may list (anyone else's id, like an unknown one, gives an empty page).
 */
export interface Page {
  pageSize: number;
  cursor?: string | undefined;
}

/** Whose things a caller lists: a user only their own; others whoever they name, or everyone (undefined). */
function whose(p: Principal, named: string | undefined, what: string): string | undefined {
  if (p.role !== "user") return named;
  if (named !== undefined && named !== p.sub) throw new CofferError("FORBIDDEN", `users list their own ${what} only`);
  return p.sub;
}

export async function listWallets(db: Db, p: Principal, q: Page & { ownerId?: string | undefined }) {
  const owner = whose(p, q.ownerId, "wallets");
  const byOwner = owner === undefined ? db`true` : db`owner_id = ${owner}`;
  const rows = await db`select id, owner_id, asset, status, posted::text, held::text, version from wallets
    where ${byOwner}
      ${q.cursor ? db`and (created_at, id) < (select created_at, id from wallets where id = ${q.cursor} and ${byOwner})` : db``}
    order by created_at desc, id desc limit ${q.pageSize + 1}`;
  const page = rows.slice(0, q.pageSize);
  return {
    items: page.map((w) =>
      walletView({ walletId: w.id, ownerId: w.owner_id, asset: w.asset, status: w.status, posted: BigInt(w.posted), held: BigInt(w.held), version: Number(w.version) }),
    ),
    nextCursor: rows.length > q.pageSize ? (page[page.length - 1]!.id as string) : null,
  };
}

/**
 * The chamas someone belongs to, belonged to, or is invited to, with where they stand in each
 * (role and status: an invitation is listed so it can be found and accepted; a revoked one is not).
 */
export async function listChamas(db: Db, p: Principal, q: Page & { memberId?: string | undefined }) {
  const member = whose(p, q.memberId, "chamas");
  const rows =
    member === undefined
      ? await db`select c.id, c.name, c.asset, c.status, c.created_at from chamas c
          ${q.cursor ? db`where (c.created_at, c.id) < (select created_at, id from chamas where id = ${q.cursor})` : db``}
          order by c.created_at desc, c.id desc limit ${q.pageSize + 1}`
      : await db`select c.id, c.name, c.asset, c.status, c.created_at, m.member_id, m.role, m.status as standing
          from chama_members m join chamas c on c.id = m.chama_id
          where m.member_id = ${member} and m.status in ('member', 'invited', 'former')
            ${
              q.cursor
                ? db`and (c.created_at, c.id) < (select k.created_at, k.id from chamas k join chama_members n on n.chama_id = k.id
                      where k.id = ${q.cursor} and n.member_id = ${member} and n.status in ('member', 'invited', 'former'))`
                : db``
            }
          order by c.created_at desc, c.id desc limit ${q.pageSize + 1}`;
  const page = rows.slice(0, q.pageSize);
  return {
    items: page.map((c) => ({
      id: c.id as string,
      name: c.name as string,
      asset: c.asset as string,
      status: c.status as string,
      createdAt: (c.created_at as Date).toISOString(),
      ...(member === undefined ? {} : { member: { memberId: c.member_id as string, role: (c.role as string | null) ?? null, status: c.standing as string } }),
    })),
    nextCursor: rows.length > q.pageSize ? (page[page.length - 1]!.id as string) : null,
  };
}
