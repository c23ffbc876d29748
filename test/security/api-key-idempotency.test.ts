import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestNode, type TestNode } from "../support/node";

/**
 * Creating or rotating an API key is exactly-once per Idempotency-Key, like every other change:
 * a retry (the typed client retries after a lost answer, with the same key) gets the first answer
 * back, secret included, and no second key exists. Another request under the key is a 422.
 */
let t: TestNode;
beforeAll(async () => {
  t = await startTestNode("apikeyonce");
});
afterAll(() => t.stop());

const NEW_KEY = { name: "payroll", subject: "payroll-svc", permissions: ["payments:write"] };
const keysNamed = async (name: string) => Number((await t.node.db`select count(*)::int as n from api_keys where name = ${name}`)[0]!.n);

test("a create retried with the same key answers the same key and secret, and makes one key", async () => {
  const key = crypto.randomUUID();
  const input = { ...NEW_KEY, name: `once-${key}` };
  const answers = await Promise.all(Array.from({ length: 5 }, () => t.api("POST", "/v1/api-keys", input, { key })));
  expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);
  for (const a of answers) expect(a.body).toEqual(answers[0]!.body);
  expect(await keysNamed(input.name)).toBe(1);
  // The secret that came back works.
  const me = await t.api("GET", "/v1/wallets/00000000-0000-4000-8000-000000000000", undefined, { token: answers[0]!.body.key });
  expect(me.status).toBe(403);
});

test("a rotation retried with the same key answers the same new secret, and rotates once", async () => {
  const created = await t.api("POST", "/v1/api-keys", { ...NEW_KEY, name: `rot-${crypto.randomUUID()}` });
  const key = crypto.randomUUID();
  const first = await t.api("POST", `/v1/api-keys/${created.body.id}/rotate`, { overlapSeconds: 60 }, { key });
  const again = await t.api("POST", `/v1/api-keys/${created.body.id}/rotate`, { overlapSeconds: 60 }, { key });
  expect(first.status).toBe(201);
  expect(again).toMatchObject({ status: 201, body: first.body });
  expect(await keysNamed(created.body.name)).toBe(2);
});

test("the same key with another request is a 422 and creates nothing", async () => {
  const key = crypto.randomUUID();
  const name = `conflict-${key}`;
  expect((await t.api("POST", "/v1/api-keys", { ...NEW_KEY, name }, { key })).status).toBe(201);
  const other = await t.api("POST", "/v1/api-keys", { ...NEW_KEY, name: `${name}-other` }, { key });
  expect(other).toMatchObject({ status: 422, body: { code: "IDEMPOTENCY_CONFLICT" } });
  expect(await keysNamed(`${name}-other`)).toBe(0);
});

test("the stored answer is sealed: the secret is not in the database in clear", async () => {
  const key = crypto.randomUUID();
  const created = await t.api("POST", "/v1/api-keys", { ...NEW_KEY, name: `sealed-${key}` }, { key });
  const [row] = await t.node.db`select body::text as body from idempotency_keys where key = ${key}`;
  expect(row!.body).not.toContain(created.body.key.split("_").at(-1));
});
