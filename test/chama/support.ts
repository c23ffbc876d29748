import { expect } from "bun:test";
import { user, type As } from "../support/auth";
import { expectProblem } from "../support/problem";
import { startTestNode, type ApiOptions, type ApiResponse, type TestNode } from "../support/node";

// The helpers every suite shares, re-exported so the chama suites import from one place.
export { people, user } from "../support/auth";
export { verifyIsClean } from "../support/ledger";
export { cents, usd } from "../support/money";
export { expectProblem } from "../support/problem";

/**
 * Shared pieces of the chama HTTP suites: a node whose clock a test can move, people (user tokens
 * are the members), a chama built to order, and readers for its balance, withdrawals and audit log.
 * Every helper asserts the status it needs, so a broken setup fails where it broke.
 */

/** A node with a clock the test moves forward (never back), instead of sleeping. */
export interface ChamaNode {
  t: TestNode;
  clock: {
    advance(ms: number): void;
    now(): Date;
    /** Stop the clock where it is (for exact boundaries); `advance` then moves the stopped clock. */
    freeze(): number;
    /** Run again from where it stands. */
    thaw(): void;
  };
}

export async function startChamaNode(label: string, env: Record<string, string> = {}): Promise<ChamaNode> {
  let offsetMs = 0;
  let frozenAt: number | null = null;
  const nowMs = () => frozenAt ?? Date.now() + offsetMs;
  const now = () => new Date(nowMs());
  // The expiry worker only runs when a test calls runOnce(), so its counts are exact.
  const t = await startTestNode(label, env, { now, chamaExpiryPollMs: 3_600_000 });
  return {
    t,
    clock: {
      advance(ms: number) {
        if (ms < 0) throw new Error("the test clock only moves forward");
        if (frozenAt !== null) frozenAt += ms;
        else offsetMs += ms;
      },
      now,
      freeze() {
        frozenAt = nowMs();
        return frozenAt;
      },
      thaw() {
        if (frozenAt === null) return;
        // Never back: resume from the frozen time (or real time plus the old offset, if later).
        offsetMs = Math.max(offsetMs, frozenAt - Date.now());
        frozenAt = null;
      },
    },
  };
}

export const AUDITOR: As = { sub: "test-auditor", role: "auditor" };
export const PROCESSOR: As = { sub: "payout-processor", role: "service", perms: ["withdrawals:process"] };

/** A distinctive account number: it must never come back in any answer. */
export const BANK_ACCOUNT = "DE89370400440532013000";
export const BANK = { type: "bank", account: BANK_ACCOUNT } as const;

export function expectOk(res: ApiResponse, status = 200): any {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export interface ChamaSpec {
  /** The first admin creates the chama; the others are added as admins. */
  admins: string[];
  members?: string[];
  /** Deposited (attributed to the first admin) by the platform admin. */
  fund?: string;
  rules?: Record<string, unknown>;
}

/** Everything a test needs to talk about one chama. */
export class Chama {
  constructor(
    readonly t: TestNode,
    readonly id: string,
    readonly admins: string[],
    readonly members: string[],
  ) {}

  get path(): string {
    return `/v1/chamas/${this.id}`;
  }

  /** Call the chama's API as `who` (a member id acts with a user token; omitted: the platform admin). */
  call(method: string, sub: string, body?: unknown, who?: string | As, opts: ApiOptions = {}): Promise<ApiResponse> {
    const as = typeof who === "string" ? user(who) : who;
    return this.t.api(method, `${this.path}${sub}`, body, { ...opts, ...(as ? { as } : {}) });
  }

  async view(): Promise<any> {
    return expectOk(await this.call("GET", ""));
  }

  async balance(): Promise<{ posted: string; held: string; available: string }> {
    return (await this.view()).balance;
  }

  async deposit(memberId: string, amount: string): Promise<any> {
    return expectOk(await this.call("POST", "/deposits", { memberId, amount }), 201);
  }

  async setRules(rules: Record<string, unknown>): Promise<any> {
    return expectOk(await this.call("POST", "/rules", rules, this.admins[0]), 200);
  }

  request(memberId: string, amount: string, opts: ApiOptions = {}): Promise<ApiResponse> {
    return this.call("POST", "/withdrawals", { amount, destination: BANK }, memberId, opts);
  }

  /** A request that must be accepted; returns the withdrawal view. */
  async requested(memberId: string, amount: string): Promise<any> {
    const w = expectOk(await this.request(memberId, amount), 201);
    expect(w.status).toBe("pending_approval");
    return w;
  }

  step(wid: string, step: string, who: string | As | undefined, body: unknown = {}, opts: ApiOptions = {}): Promise<ApiResponse> {
    return this.call("POST", `/withdrawals/${wid}/${step}`, body, who, opts);
  }

  async withdrawal(wid: string): Promise<any> {
    return expectOk(await this.call("GET", `/withdrawals/${wid}`));
  }

  /** A withdrawal's reviews, oldest first. */
  async reviews(wid: string): Promise<any[]> {
    return expectOk(await this.call("GET", `/withdrawals/${wid}/reviews`)).items;
  }

  /** The first admin who is not the requester. */
  approverFor(requester: string, skip = 0): string {
    const a = this.admins.filter((x) => x !== requester)[skip];
    if (!a) throw new Error(`no admin other than ${requester}`);
    return a;
  }

  /** Request, approve (rules.approvalsRequired = 1), continue: a withdrawal in `processing`. */
  async processing(memberId: string, amount: string): Promise<any> {
    const w = await this.requested(memberId, amount);
    expect(expectOk(await this.step(w.id, "approve", this.approverFor(memberId))).status).toBe("approved");
    const p = expectOk(await this.step(w.id, "continue", memberId));
    expect(p.status).toBe("processing");
    return p;
  }

  async member(memberId: string): Promise<any> {
    return expectOk(await this.call("GET", `/members/${encodeURIComponent(memberId)}`));
  }

  /** The whole audit log, newest first (follows cursors, bounded). */
  async audit(): Promise<any[]> {
    const items: any[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const res = expectOk(await this.call("GET", `/audit?limit=200${cursor ? `&cursor=${cursor}` : ""}`));
      items.push(...res.items);
      if (!res.nextCursor) return items;
      cursor = res.nextCursor;
    }
    throw new Error("audit log longer than 50 pages");
  }

  /** Every withdrawal of this chama (follows cursors, bounded). */
  async withdrawals(status?: string): Promise<any[]> {
    const items: any[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const q = [status ? `status=${status}` : "", "limit=200", cursor ? `cursor=${cursor}` : ""].filter(Boolean).join("&");
      const res = expectOk(await this.call("GET", `/withdrawals?${q}`));
      items.push(...res.items);
      if (!res.nextCursor) return items;
      cursor = res.nextCursor;
    }
    throw new Error("more than 50 pages of withdrawals");
  }

  /** Journals of `kind` of this chama, counted in the ledger itself. */
  async journals(kind: string): Promise<number> {
    // 006_chamas.sql: chama journals live in the shared ledger with journals.wallet_id = the chama's id.
    const [row] = await this.t.node.db`select count(*)::int as n from journals where kind = ${kind} and wallet_id = ${this.id}`;
    return (row as { n: number }).n;
  }
}

/** Create a chama as its first admin (a user naming themself), add the rest, set rules, fund it. */
export async function newChama(t: TestNode, spec: ChamaSpec): Promise<Chama> {
  const [first, ...otherAdmins] = spec.admins;
  if (!first) throw new Error("a chama needs an admin");
  const created = expectOk(await t.api("POST", "/v1/chamas", { name: `chama of ${first}`, asset: "USD" }, { as: user(first) }), 201);
  expect(created).toMatchObject({ asset: "USD", status: "active", createdBy: first, members: 1 });
  const chama = new Chama(t, created.id, spec.admins, spec.members ?? []);
  for (const admin of otherAdmins) {
    expect(expectOk(await chama.call("POST", "/members", { memberId: admin, role: "admin" }, first), 201)).toMatchObject({ memberId: admin, role: "admin", status: "member" });
  }
  for (const member of spec.members ?? []) {
    expect(expectOk(await chama.call("POST", "/members", { memberId: member }, first), 201)).toMatchObject({ memberId: member, role: "member", status: "member" });
  }
  if (spec.rules) await chama.setRules(spec.rules);
  if (spec.fund) await chama.deposit(first, spec.fund);
  return chama;
}

/** Everything a refused request must leave as it was: the chama, its withdrawals, members and audit log. */
export async function snapshotOf(chama: Chama): Promise<unknown> {
  const [view, withdrawals, members, audit] = await Promise.all([
    chama.view(),
    chama.withdrawals(),
    chama.call("GET", "/members").then((r) => expectOk(r)),
    chama.audit(),
  ]);
  return { view, withdrawals, members, audit };
}

/** Send a request that must be refused with `status`/`code`, and prove it changed nothing. */
export async function expectRefusedAndUnchanged(chama: Chama, send: () => Promise<ApiResponse>, status: number, code: string): Promise<void> {
  const before = await snapshotOf(chama);
  expectProblem(await send(), status, code);
  expect(await snapshotOf(chama)).toEqual(before);
}
