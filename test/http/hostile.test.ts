import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ERROR_STATUS } from "../../lib/errors";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { ADMIN, tokenFor } from "../support/auth";

/**
 * Every route x hostile input: always a 4xx problem+json with a known `code`, never a 5xx, never a
 * stack trace, never a long hostile string echoed back, and never a cent moved. Each table test
 * collects every bad answer and fails once with the whole list, so one run shows them all.
 */
let t: TestNode;
const ids = { wallet: "", other: "", withdrawal: "", transfer: "" };
let booksBefore: unknown;

const bank = { type: "bank", account: "DE89 3704 0044" };
const cryptoDestination = { type: "crypto", network: "ethereum", address: "0xAbC123" };

beforeAll(async () => {
  t = await startTestNode("hostile");
  ids.wallet = await fundedWallet(t.api, "USD", "100");
  ids.other = await fundedWallet(t.api, "USD");
  // A finished withdrawal: any step that gets past validation is a 409, so an accepted hostile body shows.
  const withdrawal = await t.api("POST", `/v1/wallets/${ids.wallet}/withdrawals`, { amount: "1", destination: bank });
  expect((await t.api("POST", `/v1/withdrawals/${withdrawal.body.id}/complete`)).status).toBe(200);
  ids.withdrawal = withdrawal.body.id;
  const transfer = await t.api("POST", "/v1/transfers", { fromWalletId: ids.wallet, toWalletId: ids.other, amount: "1" });
  ids.transfer = transfer.body.id;
  expect(await t.node.saga.idle()).toBe(true);
  booksBefore = await books();
});
afterAll(() => t.stop());

/** Balances and journal count: no hostile request may change them. */
async function books() {
  const wallets = await Promise.all([ids.wallet, ids.other].map(async (id) => (await t.api("GET", `/v1/wallets/${id}`)).body.balance));
  const [row] = await t.node.db`select count(*)::int as journals, (select count(*)::int from wallets) as wallets, (select count(*)::int from withdrawals) as withdrawals from journals`;
  return { wallets, row };
}

// ---------------------------------------------------------------------------------------------
// Requests and what a safe answer looks like

interface Answer {
  status: number;
  text: string;
  contentType: string;
}

interface Request {
  method: string;
  path: string;
  body?: string | Uint8Array | ReadableStream<Uint8Array>;
  key?: string | null;
  headers?: Record<string, string>;
}

async function send({ method, path, body, key, headers = {} }: Request): Promise<Answer> {
  const all: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${await tokenFor(ADMIN)}`, ...headers };
  if (method !== "GET" && key !== null) all["idempotency-key"] = key ?? crypto.randomUUID();
  const res = await fetch(t.baseUrl + path, { method, headers: all, body, ...(body instanceof ReadableStream ? { duplex: "half" } : {}) } as RequestInit);
  return { status: res.status, text: await res.text(), contentType: res.headers.get("content-type") ?? "" };
}

const STACK = /\n\s*at |\bat [\w$.<>]+ \(|\.tsx?:\d|\.js:\d|node_modules|\/work\/|Error: /;
const ECHO_MIN = 64;

/** Everything wrong with an answer to a hostile request; empty when it is a safe refusal. */
function faults(answer: Answer, hostile: string[], { allowed = [400, 404, 409, 413, 422], transportMayRefuse = false } = {}): string[] {
  // Bun's HTTP parser itself answers a bare 400 to some header bytes (C0 controls) before the app runs.
  if (transportMayRefuse && answer.status === 400 && answer.text === "") return [];
  const out: string[] = [];
  if (!allowed.includes(answer.status)) out.push(`status ${answer.status}`);
  if (!answer.contentType.startsWith("application/problem+json")) out.push(`content-type ${answer.contentType}`);
  let body: { code?: unknown; status?: unknown } = {};
  try {
    body = JSON.parse(answer.text);
  } catch {
    out.push("body is not JSON");
  }
  if (typeof body.code !== "string" || !Object.hasOwn(ERROR_STATUS, body.code)) out.push(`code ${String(body.code)}`);
  if (body.status !== answer.status) out.push(`body.status ${String(body.status)}`);
  if (STACK.test(answer.text)) out.push(`stack trace: ${answer.text.slice(0, 200)}`);
  const strings = allStrings(body).join("\n");
  for (const h of hostile) if (h.length >= ECHO_MIN && strings.includes(h.slice(0, ECHO_MIN))) out.push(`echoes ${h.slice(0, 20)}… (${h.length} chars)`);
  if (out.length) out.push(`code=${String(body.code)} body=${answer.text.slice(0, 160)}`);
  return out;
}

function allStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [k, ...allStrings(v)]);
  return [];
}

/** Run a table of requests; returns "label: faults" for each one that was not a safe refusal. */
interface Case {
  label: string;
  request: Request;
  hostile?: string[];
  allowed?: number[];
  transportMayRefuse?: boolean;
}

async function survey(cases: Case[]): Promise<string[]> {
  const failures: string[] = [];
  for (const c of cases) {
    const found = faults(await send(c.request), c.hostile ?? [], { ...(c.allowed ? { allowed: c.allowed } : {}), transportMayRefuse: c.transportMayRefuse ?? false });
    if (found.length) failures.push(`${c.request.method} ${c.request.path.slice(0, 80)} ${c.label}: ${found.join("; ")}`);
  }
  return failures;
}

// ---------------------------------------------------------------------------------------------
// The routes and the hostile inputs

type Param = "wallet" | "withdrawal" | "transfer" | null;
interface Route {
  method: "GET" | "POST";
  path: string;
  param: Param;
  /** A body that is valid, for POSTs; hostile variants are derived from it field by field. */
  body?: () => Record<string, unknown>;
}

const ROUTES: Route[] = [
  { method: "POST", path: "/v1/wallets", param: null, body: () => ({ ownerId: "owner-1", asset: "USD" }) },
  { method: "GET", path: "/v1/wallets/:id", param: "wallet" },
  { method: "POST", path: "/v1/wallets/:id/credits", param: "wallet", body: () => ({ amount: "1", reference: "ref-1" }) },
  { method: "POST", path: "/v1/wallets/:id/payments", param: "wallet", body: () => ({ amount: "1", reference: "ref-1" }) },
  { method: "POST", path: "/v1/wallets/:id/withdrawals", param: "wallet", body: () => ({ amount: "1", destination: { ...bank } }) },
  { method: "POST", path: "/v1/wallets/:id/withdrawals", param: "wallet", body: () => ({ amount: "1", destination: { ...cryptoDestination } }) },
  ...(["freeze", "unfreeze", "close"] as const).map((a): Route => ({ method: "POST", path: `/v1/wallets/:id/${a}`, param: "wallet", body: () => ({}) })),
  { method: "GET", path: "/v1/wallets/:id/transactions", param: "wallet" },
  { method: "GET", path: "/v1/withdrawals/:id", param: "withdrawal" },
  ...(["process", "complete", "fail", "cancel"] as const).map((s): Route => ({ method: "POST", path: `/v1/withdrawals/:id/${s}`, param: "withdrawal", body: () => ({ reason: "because" }) })),
  { method: "POST", path: "/v1/transfers", param: null, body: () => ({ fromWalletId: ids.wallet, toWalletId: ids.other, amount: "1" }) },
  { method: "GET", path: "/v1/transfers/:id", param: "transfer" },
  { method: "GET", path: "/admin/wallets/:id/state", param: "wallet" },
];

const pathOf = (route: Route, id?: string) => route.path.replace(":id", id ?? (route.param ? ids[route.param] : ""));
const label = (route: Route) => `${route.method} ${route.path}${route.body && "destination" in route.body() ? ` (${(route.body().destination as { type: string }).type})` : ""}`;

const LONG = "A".repeat(10_000);
/** None of these is a valid id, amount, asset, token or account; free text (`reason`) may accept some. */
const HOSTILE_STRINGS = [
  "' OR '1'='1",
  "'; DROP TABLE wallets; --",
  "1; select pg_sleep(5)--",
  '" OR ""="',
  "$where: 1",
  "\u202Eevil\u202C",
  "\u0000",
  "1\u00002",
  "\uD800",
  "😀💸",
  "１２３",
  "١٢٣",
  "<script>alert(1)</script>",
  "${7*7}{{7*7}}",
  "../../etc/passwd",
  "%00",
  "\r\nX-Injected: 1",
  "",
  " ",
  "\t",
  LONG,
];
const HOSTILE_VALUES: unknown[] = [...HOSTILE_STRINGS, 0, -1, 1.5, 1e308, 9007199254740993, true, false, null, [], ["1"], {}, { $gt: "" }];

const nest = (depth: number, leaf: string) => '{"a":'.repeat(depth) + leaf + "}".repeat(depth);
const HOSTILE_BODIES: { label: string; body: string | Uint8Array }[] = [
  { label: "truncated JSON", body: '{"amount":' },
  { label: "unclosed object", body: "{" },
  { label: "single quotes", body: "{'amount': '1'}" },
  { label: "trailing comma", body: '{"amount":"1",}' },
  { label: "bare word", body: "undefined" },
  { label: "NaN", body: "NaN" },
  { label: "NUL byte", body: "\u0000" },
  { label: "invalid UTF-8", body: new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]) },
  { label: "form encoding", body: "amount=1&reference=x" },
  { label: "array", body: "[]" },
  { label: "array of the valid body", body: '[{"amount":"1"}]' },
  { label: "null", body: "null" },
  { label: "number", body: "42" },
  { label: "string", body: '"hello"' },
  { label: "boolean", body: "true" },
  { label: "unknown field only", body: '{"evil":1}' },
  { label: "__proto__ key", body: '{"__proto__":{"polluted":"yes"}}' },
  { label: "constructor.prototype key", body: '{"constructor":{"prototype":{"polluted":"yes"}}}' },
  { label: "5,000 nested objects", body: nest(5_000, "1") },
  { label: "20,000 nested arrays", body: "[".repeat(20_000) + "]".repeat(20_000) },
  { label: "60 KB string", body: JSON.stringify({ amount: "9".repeat(60_000) }) },
];

const PATH_IDS = (real: string) => [
  "not-a-uuid",
  "1",
  "-1",
  "null",
  "undefined",
  "*",
  ":id",
  "%2e%2e",
  "..%2F..%2Fetc%2Fpasswd",
  "%2F",
  "%00",
  "%2500",
  `${real}%00`,
  `${real}%0A`,
  `${real}%20`,
  `${real}x`,
  real.slice(0, -1),
  real.replaceAll("-", ""),
  `${real}${real}`,
  "%ZZ",
  "%E0%A4%A",
  `%E2%80%AE${real}`,
  "%F0%9F%92%B8",
  "%C0%AE%C0%AE",
  encodeURIComponent("' OR 1=1 --"),
  encodeURIComponent("1;DROP TABLE wallets"),
  encodeURIComponent("<script>alert(1)</script>"),
];

function fieldPaths(value: Record<string, unknown>, prefix: string[] = []): string[][] {
  return Object.entries(value).flatMap(([k, v]) => {
    const here = [...prefix, k];
    return v && typeof v === "object" ? [here, ...fieldPaths(v as Record<string, unknown>, here)] : [here];
  });
}

function withField(body: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  let at: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[path[path.length - 1]!] = value;
  return copy;
}

const show = (v: unknown) => (typeof v === "string" && v.length > 30 ? `"${v.slice(0, 10)}…" (${v.length})` : JSON.stringify(v) ?? String(v));

// ---------------------------------------------------------------------------------------------
// The tables

const POSTS = ROUTES.filter((r) => r.method === "POST");
const WITH_PARAM = ROUTES.filter((r) => r.param);

describe("hostile bodies", () => {
  for (const route of POSTS) {
    test(`${label(route)} refuses malformed, mistyped, deep and huge bodies`, async () => {
      const failures = await survey(HOSTILE_BODIES.map((b) => ({ label: b.label, request: { method: "POST", path: pathOf(route), body: b.body } })));
      expect(failures).toEqual([]);
    });
  }

  test("prototype keys pollute nothing in the serving process", () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("hostile values in every body field", () => {
  for (const route of POSTS) {
    for (const field of fieldPaths(route.body!())) {
      test(`${label(route)} refuses hostile ${field.join(".")}`, async () => {
        const failures = await survey(
          HOSTILE_VALUES.map((value) => ({
            label: `${field.join(".")}=${show(value)}`,
            request: { method: "POST", path: pathOf(route), body: JSON.stringify(withField(route.body!(), field, value)) },
            hostile: typeof value === "string" ? [value] : [],
          })),
        );
        expect(failures).toEqual([]);
      });
    }
  }
});

describe("hostile path parameters", () => {
  for (const route of WITH_PARAM) {
    test(`${label(route)} refuses ids that are not UUIDs`, async () => {
      const failures = await survey(
        PATH_IDS(ids[route.param!]).map((id) => ({
          label: `id=${id.slice(0, 40)}`,
          request: { method: route.method, path: pathOf(route, id), ...(route.body ? { body: JSON.stringify(route.body()) } : {}) },
        })),
      );
      expect(failures).toEqual([]);
    });
  }
});

describe("hostile Idempotency-Keys", () => {
  const BAD_KEYS = ["", "k".repeat(256), "a b", "a\tb", "a\u0001b", "a\u001fb", "a\u007fb", "é", "\u00a0"];
  for (const route of POSTS) {
    test(`${label(route)} refuses keys that are too long or not printable ASCII`, async () => {
      const failures = await survey(
        BAD_KEYS.map((key) => ({
          label: `key=${JSON.stringify(key).slice(0, 30)}`,
          request: { method: "POST", path: pathOf(route), body: JSON.stringify(route.body!()), key },
          hostile: [key],
          transportMayRefuse: /[\u0000-\u0008\u000a-\u001f]/.test(key),
        })),
      );
      expect(failures).toEqual([]);
    });
  }
});

describe("hostile query parameters", () => {
  test("GET /v1/wallets/:id/transactions refuses bad limits and cursors", async () => {
    const queries = [
      "limit=-1", "limit=0", "limit=abc", "limit=1e3", "limit=1.5", "limit=201", "limit=99999999999999999999", "limit=", "limit=%00", "limit=0x10",
      "cursor=' or 1=1", "cursor=-1", "cursor=abc", "cursor=", "cursor=%00", "cursor=1;drop", "cursor=99999999999999999999", "cursor=9999999999999999999",
      "foo=bar", "limit[]=1", `cursor=${"9".repeat(5000)}`,
    ];
    // Spaces and quotes are encoded; percent escapes written above (%00) are sent as they are.
    const query = (q: string) => encodeURI(q).replaceAll("%25", "%");
    const failures = await survey(queries.map((q) => ({ label: q.slice(0, 40), request: { method: "GET", path: `/v1/wallets/${ids.wallet}/transactions?${query(q)}` }, hostile: [q] })));
    expect(failures).toEqual([]);
  });
});

describe("wrong methods and sizes", () => {
  test("PUT, PATCH and DELETE on every route are a 4xx problem", async () => {
    const failures = await survey(
      ROUTES.flatMap((route) => ["PUT", "PATCH", "DELETE"].map((method) => ({ label: method, request: { method, path: pathOf(route), body: "{}" } }))),
    );
    expect(failures).toEqual([]);
  });

  test("a body over 64 KiB is a 413 on every POST route", async () => {
    const big = JSON.stringify({ amount: "1", reference: "r".repeat(70 * 1024) });
    const failures = await survey(POSTS.map((route) => ({ label: "70 KiB", request: { method: "POST", path: pathOf(route), body: big }, allowed: [413] })));
    expect(failures).toEqual([]);
  });

  test("a chunked body over 64 KiB without a Content-Length is a 413 too", async () => {
    const chunk = new TextEncoder().encode("9".repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"amount":"'));
        if (sent++ < 6) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const answer = await send({ method: "POST", path: `/v1/wallets/${ids.wallet}/credits`, body: stream });
    expect(faults(answer, [], { allowed: [413] })).toEqual([]);
  });
});

test("after every table above the books are exactly as before and the verifier is clean", async () => {
  expect(await books()).toEqual(booksBefore as Awaited<ReturnType<typeof books>>);
  expect((await t.api("GET", "/admin/verify")).body).toEqual({ ok: true, mismatches: [] });
});

/** Run after the books check: it moves money on a wallet of its own on purpose. */
test("a key that looks like SQL is an ordinary key: stored and replayed verbatim", async () => {
  const id = await fundedWallet(t.api, "USD");
  for (const key of ["'OR'1'='1';--", "%00", "\\x00", "k".repeat(255)]) {
    const first = await t.api("POST", `/v1/wallets/${id}/credits`, { amount: "0.01" }, { key });
    const again = await t.api("POST", `/v1/wallets/${id}/credits`, { amount: "0.01" }, { key });
    expect({ key, status: first.status }).toEqual({ key, status: 201 });
    expect(again.body).toEqual(first.body);
    expect((await t.api("POST", `/v1/wallets/${id}/credits`, { amount: "0.02" }, { key })).body.code).toBe("IDEMPOTENCY_CONFLICT");
  }
  expect((await t.api("GET", `/v1/wallets/${id}`)).body.balance.posted).toBe("0.04");
});

// ---------------------------------------------------------------------------------------------
// Found while building the tables: each documents one way hostile input got through

test("free text that Postgres cannot store (NUL, lone surrogates) is refused, not a 503", async () => {
  const failures: string[] = [];
  for (const reason of ["x\u0000y", "x\uD800y", "\u0000"]) {
    const created = await t.api("POST", `/v1/wallets/${ids.wallet}/withdrawals`, { amount: "0.01", destination: bank });
    expect(created.status).toBe(201);
    const answer = await send({ method: "POST", path: `/v1/withdrawals/${created.body.id}/fail`, body: JSON.stringify({ reason }) });
    const found = faults(answer, [], { allowed: [400] });
    if (found.length) failures.push(`reason=${JSON.stringify(reason)}: ${found.join("; ")}`);
    // Leave nothing held behind, whatever happened above.
    await t.api("POST", `/v1/withdrawals/${created.body.id}/cancel`);
  }
  expect(failures).toEqual([]);
});

test("a wallet id in upper case is the same wallet or a 400, never a 5xx", async () => {
  const upper = ids.other.toUpperCase();
  const credit = await t.api("POST", `/v1/wallets/${upper}/credits`, { amount: "0.01" });
  expect(credit.status === 201 ? credit.body.walletId : credit.body.code).toBeOneOf([ids.other, "VALIDATION_FAILED"]);
});

test("a long hostile path or field name is not echoed back", async () => {
  const name = "k".repeat(5_000);
  const failures = await survey([
    { label: "long id", request: { method: "GET", path: `/v1/wallets/${"A".repeat(3_000)}` }, hostile: ["A".repeat(3_000)] },
    { label: "long field name", request: { method: "POST", path: `/v1/wallets/${ids.wallet}/credits`, body: JSON.stringify({ amount: "1", [name]: 1 }) }, hostile: [name] },
    { label: "long query name", request: { method: "GET", path: `/v1/wallets/${ids.wallet}/transactions?${name}=1` }, hostile: [name] },
  ]);
  expect(failures).toEqual([]);
});
