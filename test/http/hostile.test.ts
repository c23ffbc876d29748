import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { OPERATIONS } from "../../src/api/operations";
import type { Operation } from "../../src/api/operation";
import { ERROR_STATUS } from "../../lib/errors";
import { forEachBounded } from "../support/bounded";
import { verifyIsClean } from "../support/ledger";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { ADMIN, tokenFor, type As } from "../support/auth";
import { operationFixtures, restRequestOf, type Fixture } from "../support/operations";

/**
 * Every operation of the table (src/api/operations/) x hostile input: always a 4xx problem+json
 * with a known `code`, never a 5xx, never a stack trace, never a long hostile string echoed back,
 * and never a cent moved. Each operation is tried on a fixture of its own (test/support/operations.ts)
 * by the caller who may call it; where it has one, on a `refused` fixture (a finished withdrawal, a
 * caller the chama's rules refuse…), so free text that is valid reaches the operation and is
 * refused there instead of acting. Each table test collects every bad answer and fails once with
 * the whole list, so one run shows them all.
 */
let t: TestNode;
const ids = { wallet: "", other: "" };
let booksBefore: unknown;

/** What each operation is tried on, and how its valid input is refused when the fixture is a `refused` one. */
interface Target {
  f: Fixture;
  refusal?: { status: number; code: string };
}
const targets = new Map<string, Target>();

function target(op: Operation): Target {
  const found = targets.get(op.name);
  if (!found) throw new Error(`no fixture arranged for ${op.name}`);
  return found;
}

const bank = { type: "bank", account: "DE89 3704 0044 0532 0130 00" };
const cryptoDestination = { type: "crypto", network: "ethereum", address: "0xAbC123" };

beforeAll(async () => {
  t = await startTestNode("hostile");
  ids.wallet = await fundedWallet(t.api, "USD", "100");
  ids.other = await fundedWallet(t.api, "USD");
  const fixtures = operationFixtures(t);
  await forEachBounded(OPERATIONS, 8, async (op) => {
    const f = await fixtures.arrange(op.name, fixtures.has(op.name, "refused") ? "refused" : "ready");
    targets.set(op.name, { f });
  });
  // The valid input on a refused fixture: refused after every check of its shape, with a problem.
  for (const [name, found] of targets) {
    if (found.f.state !== "refused") continue;
    const answer = await send(request(found.f.op, found.f.input, found.f.as));
    found.refusal = { status: answer.status, code: JSON.parse(answer.text).code };
    if (answer.status < 400 || answer.status >= 500) throw new Error(`the refused fixture of ${name} was answered ${answer.status}: ${answer.text}`);
  }
  booksBefore = await books();
}, 60_000);
afterAll(() => t.stop());

/** Every balance, status and count a hostile request could change: no request below may change any. */
async function books() {
  const [row] = await t.node.db`select
    (select json_agg(json_build_object('id', id, 'status', status, 'posted', posted::text, 'held', held::text) order by id) from wallets) as wallets,
    (select json_agg(json_build_object('id', id, 'status', status, 'posted', posted::text, 'held', held::text) order by id) from chamas) as chamas,
    (select json_agg(json_build_object('id', id, 'status', status) order by id) from withdrawals) as withdrawals,
    (select json_agg(json_build_object('id', id, 'status', status) order by id) from chama_withdrawals) as chama_withdrawals,
    (select json_agg(json_build_object('chama', chama_id, 'member', member_id, 'role', role, 'status', status) order by chama_id, member_id) from chama_members) as members,
    (select json_agg(json_build_object('id', id, 'revoked', revoked_at) order by id) from api_keys) as api_keys,
    (select count(*)::int from journals) as journals, (select count(*)::int from transfers) as transfers`;
  return row;
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
  /** Who sends it (default: an admin). */
  as?: As;
}

async function send({ method, path, body, key, headers = {}, as = ADMIN }: Request): Promise<Answer> {
  const all: Record<string, string> = { "content-type": "application/json", authorization: `Bearer ${await tokenFor(as)}`, ...headers };
  if (method !== "GET" && key !== null) all["idempotency-key"] = key ?? crypto.randomUUID();
  const res = await fetch(t.baseUrl + path, { method, headers: all, body, ...(body instanceof ReadableStream ? { duplex: "half" } : {}) } as RequestInit);
  return { status: res.status, text: await res.text(), contentType: res.headers.get("content-type") ?? "" };
}

const STACK = /\n\s*at |\bat [\w$.<>]+ \(|\.tsx?:\d|\.js:\d|node_modules|\/work\/|Error: /;
const ECHO_MIN = 64;

/** Everything wrong with an answer to a hostile request; empty when it is a safe refusal. */
function faults(
  answer: Answer,
  hostile: string[],
  { allowed = [400, 404, 409, 413, 422], transportMayRefuse = false, refusal }: { allowed?: number[]; transportMayRefuse?: boolean; refusal?: Target["refusal"] } = {},
): string[] {
  // Bun's HTTP parser itself answers a bare 400 to some header bytes (C0 controls) before the app runs.
  if (transportMayRefuse && answer.status === 400 && answer.text === "") return [];
  const out: string[] = [];
  if (!answer.contentType.startsWith("application/problem+json")) out.push(`content-type ${answer.contentType}`);
  let body: { code?: unknown; status?: unknown } = {};
  try {
    body = JSON.parse(answer.text);
  } catch {
    out.push("body is not JSON");
  }
  // A value valid for the field reaches the operation, which refuses it as it refuses the valid input.
  const asRefused = refusal !== undefined && answer.status === refusal.status && body.code === refusal.code;
  if (!allowed.includes(answer.status) && !asRefused) out.push(`status ${answer.status}`);
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
  refusal?: Target["refusal"];
}

async function survey(cases: Case[]): Promise<string[]> {
  const failures: string[] = [];
  for (const c of cases) {
    const found = faults(await send(c.request), c.hostile ?? [], {
      ...(c.allowed ? { allowed: c.allowed } : {}),
      transportMayRefuse: c.transportMayRefuse ?? false,
      ...(c.refusal ? { refusal: c.refusal } : {}),
    });
    if (found.length) failures.push(`${c.request.method} ${c.request.path.slice(0, 80)} ${c.label}: ${found.join("; ")}`);
  }
  return failures;
}

// ---------------------------------------------------------------------------------------------
// The operations and the hostile inputs

/** The REST request for an operation: its fixture's path, and its body (JSON) unless given another. */
function request(op: Operation, input: Record<string, unknown>, as: As, body?: string): Request {
  const rest = restRequestOf(op, input);
  const json = body ?? (rest.body ? JSON.stringify(rest.body) : undefined);
  return { method: rest.method, path: rest.path, as, ...(json !== undefined ? { body: json } : {}) };
}

/** The path with one parameter replaced by `raw` (sent as written: it may hold its own escapes). */
function pathWith(op: Operation, input: Record<string, unknown>, param: string, raw: string): string {
  return restRequestOf(op, { ...input, [param]: "__HOSTILE__" }).path.replace("__HOSTILE__", raw).replace(/\?.*$/, "");
}

const paramsOf = (op: Operation) => [...op.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
const label = (op: Operation) => `${op.method} ${op.path}`;

/** A POST's body fields as its fixture gives them; one variant per kind of destination where there is one. */
function bodiesOf(op: Operation): { label: string; body: Record<string, unknown> }[] {
  const body = restRequestOf(op, target(op).f.input).body ?? {};
  if (!("destination" in body)) return [{ label: label(op), body }];
  return [
    { label: `${label(op)} (bank)`, body: { ...body, destination: { ...bank } } },
    { label: `${label(op)} (crypto)`, body: { ...body, destination: { ...cryptoDestination } } },
  ];
}

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

const POSTS = OPERATIONS.filter((op) => op.method === "POST");
const GETS = OPERATIONS.filter((op) => op.method === "GET");
const WITH_PARAMS = OPERATIONS.filter((op) => paramsOf(op).length > 0);

describe("hostile bodies", () => {
  for (const op of POSTS) {
    test(`${label(op)} refuses malformed, mistyped, deep and huge bodies`, async () => {
      const { f } = target(op);
      const failures = await survey(HOSTILE_BODIES.map((b) => ({ label: b.label, request: { ...request(op, f.input, f.as), body: b.body } })));
      expect(failures).toEqual([]);
    });
  }

  test("prototype keys pollute nothing in the serving process", () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("hostile values in every body field", () => {
  // The bodies come from the fixtures, arranged in beforeAll: one test per operation, every field.
  for (const op of POSTS) {
    test(`${label(op)} refuses hostile values in every field`, async () => {
      const { f, refusal } = target(op);
      const failures: string[] = [];
      for (const variant of bodiesOf(op)) {
        for (const field of fieldPaths(variant.body)) {
          failures.push(
            ...(await survey(
              HOSTILE_VALUES.map((value) => ({
                label: `${variant.label} ${field.join(".")}=${show(value)}`,
                request: request(op, f.input, f.as, JSON.stringify(withField(variant.body, field, value))),
                hostile: typeof value === "string" ? [value] : [],
                ...(refusal ? { refusal } : {}),
              })),
            )),
          );
        }
      }
      expect(failures).toEqual([]);
    });
  }
});

describe("hostile path parameters", () => {
  for (const op of WITH_PARAMS) {
    for (const param of paramsOf(op)) {
      test(`${label(op)} refuses hostile values of :${param}`, async () => {
        const { f, refusal } = target(op);
        const valid = request(op, f.input, f.as);
        const failures = await survey(
          PATH_IDS(String(f.input[param])).map((id) => ({
            label: `${param}=${id.slice(0, 40)}`,
            request: { ...valid, path: pathWith(op, f.input, param, id) },
            ...(refusal ? { refusal } : {}),
          })),
        );
        expect(failures).toEqual([]);
      });
    }
  }
});

describe("hostile Idempotency-Keys", () => {
  const BAD_KEYS = ["", "k".repeat(256), "a b", "a\tb", "a\u0001b", "a\u001fb", "a\u007fb", "é", "\u00a0"];
  for (const op of POSTS) {
    test(`${label(op)} refuses keys that are too long or not printable ASCII`, async () => {
      const { f } = target(op);
      const failures = await survey(
        BAD_KEYS.map((key) => ({
          label: `key=${JSON.stringify(key).slice(0, 30)}`,
          request: { ...request(op, f.input, f.as), key },
          hostile: [key],
          transportMayRefuse: /[\u0000-\u0008\u000a-\u001f]/.test(key),
        })),
      );
      expect(failures).toEqual([]);
    });
  }
});

describe("hostile query parameters", () => {
  const queries = [
    "limit=-1", "limit=0", "limit=abc", "limit=1e3", "limit=1.5", "limit=201", "limit=99999999999999999999", "limit=", "limit=%00", "limit=0x10",
    "cursor=' or 1=1", "cursor=-1", "cursor=abc", "cursor=", "cursor=%00", "cursor=1;drop", "cursor=99999999999999999999", "cursor=9999999999999999999",
    "status=' or 1=1", "status=%00", "foo=bar", "limit[]=1", `cursor=${"9".repeat(5000)}`,
  ];
  // Spaces and quotes are encoded; percent escapes written above (%00) are sent as they are.
  const query = (q: string) => encodeURI(q).replaceAll("%25", "%");
  for (const op of GETS) {
    test(`${label(op)} refuses bad limits, cursors, statuses and unknown parameters`, async () => {
      const { f } = target(op);
      const path = request(op, f.input, f.as).path.replace(/\?.*$/, "");
      const failures = await survey(queries.map((q) => ({ label: q.slice(0, 40), request: { method: "GET", path: `${path}?${query(q)}`, as: f.as }, hostile: [q] })));
      expect(failures).toEqual([]);
    });
  }
});

describe("wrong methods and sizes", () => {
  test("PUT, PATCH and DELETE on every operation's path are a 405 problem", async () => {
    const failures = await survey(
      OPERATIONS.flatMap((op) =>
        ["PUT", "PATCH", "DELETE"].map((method) => ({ label: `${method} (${op.name})`, request: { method, path: request(op, target(op).f.input, ADMIN).path, body: "{}" }, allowed: [405] })),
      ),
    );
    expect(failures).toEqual([]);
  });

  test("a body over 64 KiB is a 413 on every POST", async () => {
    const big = JSON.stringify({ amount: "1", reference: "r".repeat(70 * 1024) });
    const failures = await survey(POSTS.map((op) => ({ label: `70 KiB (${op.name})`, request: request(op, target(op).f.input, target(op).f.as, big), allowed: [413] })));
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
  await verifyIsClean(t);
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
