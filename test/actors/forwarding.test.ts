import { expect, test } from "bun:test";
import { BUS_PAYLOAD_MAX_BYTES } from "../../actors/bus/wire";
import { BATCH_COMMANDS_LIMIT, commandSubject, decodeBatch, decodeBatchReply, DROPPED, encodeBatch, encodeBatchReply, NOT_MINE, publicOrigin, UNANSWERED } from "../../actors/forwarding";

/** The batch format (actors/forwarding.ts): what it takes, what it refuses, and its size bound. */
test("a batch body is read back exactly; anything else is not a batch", () => {
  const items: [string, string][] = [
    ["p.wallet.3.a", "c1 x\n{}"],
    ["p.chama.1.b", "c1 y\n{\"é\":1}"],
  ];
  expect(decodeBatch(encodeBatch(items))).toEqual(items);
  for (const body of ["", "nope", "[]", '{"v":2,"c":[["a","b"]]}', '{"v":1,"c":[]}', '{"v":1,"c":[["a"]]}', '{"v":1,"c":[["a",1]]}', '{"v":1,"c":"x"}']) expect(decodeBatch(body)).toBeUndefined();
  const tooMany = Array.from({ length: BATCH_COMMANDS_LIMIT + 1 }, (): [string, string] => ["s", "p"]);
  expect(decodeBatch(encodeBatch(tooMany))).toBeUndefined();
});

test("a batch reply carries one answer per command, and marks UNANSWERED what would not fit in one bus message", () => {
  const small = { status: 201, body: { ok: true, amount: 5n } };
  const read = decodeBatchReply(encodeBatchReply("n1", "https://n1.example.com", [small, NOT_MINE, DROPPED]), 3)!;
  expect(read).toEqual({ nodeId: "n1", publicUrl: "https://n1.example.com", answers: [small, NOT_MINE, DROPPED] });
  expect(decodeBatchReply(encodeBatchReply("n1", undefined, [small]), 2)).toBeUndefined(); // the count must match

  const big = { status: 201, body: { text: "x".repeat(40_000) } };
  const body = encodeBatchReply("n1", undefined, Array(10).fill(big));
  expect(Buffer.byteLength(body)).toBeLessThan(BUS_PAYLOAD_MAX_BYTES - 512);
  const answers = decodeBatchReply(body, 10)!.answers;
  expect(answers.filter((a) => a === UNANSWERED).length).toBeGreaterThan(0);
  expect(answers.slice(0, 5)).toEqual(Array(5).fill(big));
});

test("a public URL is a bare http(s) origin, or nothing", () => {
  expect(publicOrigin("https://node-a.example.com:8443/")).toBe("https://node-a.example.com:8443");
  expect(publicOrigin("http://127.0.0.1:3001")).toBe("http://127.0.0.1:3001");
  for (const bad of ["ftp://x", "https://u:p@x", "https://x/path", "https://x/?q=1", "https://x/#f", "javascript:alert(1)", "x", 7, undefined]) expect(publicOrigin(bad)).toBeUndefined();
});

test("a command subject names a served kind, a shard and an id under the prefix", () => {
  const kinds = ["wallet", "chama", "deposit"] as const;
  expect(commandSubject("p", "p.wallet.12.abc", kinds)).toEqual({ kind: "wallet", shard: 12 });
  for (const bad of ["q.wallet.1.a", "p.node.1.a", "p.wallet.x.a", "p.wallet.1", "p.wallet.1.a.b", "p.wallet.123456.a"]) expect(commandSubject("p", bad, kinds)).toBeUndefined();
});
