import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { BUS_COMMAND_TYPES } from "../../actors/bus/envelope-schema";
import { depositMachine } from "../../machines/deposit.machine";
import { BusGuard } from "../../actors/bus/guard";
import { BusKeys } from "../../actors/bus/keys";
import { ReplayGuard } from "../../actors/bus/replay";
import { BUS_PAYLOAD_MAX_BYTES, openReply, openRequest, sealReply, sealRequest } from "../../actors/bus/wire";
import type { Envelope } from "../../actors/envelope";
import { shardOf } from "../../actors/shards";
import { chamaMachine } from "../../machines/chama.machine";
import { walletMachine } from "../../machines/wallet.machine";

/**
 * The bus's trust boundary on its own, with no services: the schema knows exactly the commands the
 * machines take, a signed message opens only on the subject, key, body and time it was signed for
 * and only once, the replay memory is bounded and long enough, and a reply opens only for its request.
 */
const KEY = randomBytes(32);
const keys = BusKeys.of("c1", { c1: KEY });
const SUBJECT = "coffer.wallet.3.0c9a3f0e-58a4-4a35-9f3a-1f0a6a2c9d11";
const BODY = '{"kind":"wallet","command":{"type":"wallet.credit","amount":{"$bigint":"100"}}}';
const NOW = 1_750_000_000_000;
const MAX_AGE = 15_000;

const bytes = (s: string) => new TextEncoder().encode(s);
const freshReplay = () => new ReplayGuard(MAX_AGE, 1_000, NOW);
const open = (payload: string | Uint8Array, opts: { subject?: string; now?: number; replay?: ReplayGuard; keys?: BusKeys } = {}) =>
  openRequest(opts.keys ?? keys, opts.replay ?? freshReplay(), opts.subject ?? SUBJECT, typeof payload === "string" ? bytes(payload) : payload, opts.now ?? NOW, MAX_AGE);

/** The header's fields and the body of a sealed request, to rebuild it with one thing changed. */
function parts(payload: string): { tag: string; kid: string; sent: string; nonce: string; mac: string; body: string } {
  const newline = payload.indexOf("\n");
  const [tag, kid, sent, nonce, mac] = payload.slice(0, newline).split(" ") as [string, string, string, string, string];
  return { tag, kid, sent, nonce, mac, body: payload.slice(newline + 1) };
}
const join = (p: ReturnType<typeof parts>) => `${p.tag} ${p.kid} ${p.sent} ${p.nonce} ${p.mac}\n${p.body}`;
const sealed = () => sealRequest(keys, SUBJECT, BODY, NOW).payload;

describe("the bus schema and the machines", () => {
  const eventsOf = (events: readonly string[]) => [...new Set(events.filter((e) => e !== "*"))].sort();

  test("the bus knows exactly the wallet machine's commands, no more and no fewer", () => {
    expect([...BUS_COMMAND_TYPES.wallet].sort() as string[]).toEqual(eventsOf(walletMachine.events));
  });

  test("the bus knows exactly the chama machine's commands, no more and no fewer", () => {
    expect([...BUS_COMMAND_TYPES.chama].sort() as string[]).toEqual(eventsOf(chamaMachine.events));
  });

  test("the bus knows exactly the deposit machine's commands, no more and no fewer", () => {
    expect([...BUS_COMMAND_TYPES.deposit].sort() as string[]).toEqual(eventsOf(depositMachine.events));
  });
});

describe("the wire format", () => {
  test("a sealed request opens on the same subject with its body and nonce intact", () => {
    const body = 'multi\nline body with ünïcödé and a trailing newline\n';
    const { payload, nonce } = sealRequest(keys, SUBJECT, body, NOW);
    expect(payload.startsWith(`c1 c1 ${NOW} ${nonce} `)).toBe(true);
    expect(open(payload)).toEqual({ ok: true, body, nonce });
  });

  test("an empty body is a valid signed message (the status probe sends one)", () => {
    const { payload, nonce } = sealRequest(keys, SUBJECT, "", NOW);
    expect(open(payload)).toEqual({ ok: true, body: "", nonce });
  });

  test("every nonce is new and long enough to be unguessable", () => {
    const nonces = new Set(Array.from({ length: 1_000 }, () => sealRequest(keys, SUBJECT, BODY, NOW).nonce));
    expect(nonces.size).toBe(1_000);
    for (const n of nonces) expect(n).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  test("a sealed reply opens for its request's nonce with its body intact", () => {
    const { nonce } = sealRequest(keys, SUBJECT, BODY, NOW);
    expect(openReply(keys, nonce, bytes(sealReply(keys, nonce, '{"status":201}')))).toBe('{"status":201}');
  });
});

describe("a request that is not exactly what a node signed is refused, with the reason", () => {
  const cases: [string, () => string | Uint8Array, string, { subject?: string; now?: number }?][] = [
    ["raw JSON with no header at all (what the old code accepted)", () => BODY, "malformed"],
    ["an empty message", () => "", "malformed"],
    ["a header line with no newline and no body", () => sealed().split("\n")[0]!, "malformed"],
    ["a header with a field missing", () => { const p = parts(sealed()); return `${p.tag} ${p.kid} ${p.sent} ${p.nonce}\n${p.body}`; }, "malformed"],
    ["a header with a field too many", () => { const p = parts(sealed()); return `${p.tag} ${p.kid} ${p.sent} ${p.nonce} ${p.mac} x\n${p.body}`; }, "malformed"],
    ["another version tag", () => join({ ...parts(sealed()), tag: "c2" }), "malformed"],
    ["a reply where a request belongs", () => sealReply(keys, "a".repeat(32), BODY), "malformed"],
    ["a time that is not a number", () => join({ ...parts(sealed()), sent: "17e11" }), "malformed"],
    ["a nonce that is too short", () => join({ ...parts(sealed()), nonce: "abc" }), "malformed"],
    ["a MAC that is not base64url of 32 bytes", () => join({ ...parts(sealed()), mac: "A".repeat(44) }), "malformed"],
    ["invalid UTF-8", () => new Uint8Array([0xff, 0xfe, 0x0a, 0xc3, 0x28]), "malformed"],
    ["a payload over the size limit", () => `${sealed()}${" ".repeat(BUS_PAYLOAD_MAX_BYTES)}`, "too_large"],
    ["a key id no node has", () => sealRequest(BusKeys.of("zz", { zz: randomBytes(32) }), SUBJECT, BODY, NOW).payload, "unknown_key"],
    ["a foreign key under the real key id", () => sealRequest(BusKeys.of("c1", { c1: randomBytes(32) }), SUBJECT, BODY, NOW).payload, "bad_mac"],
    ["the body changed after signing", () => { const p = parts(sealed()); return join({ ...p, body: p.body.replace('"100"', '"100000000"') }); }, "bad_mac"],
    ["the time changed after signing", () => { const p = parts(sealed()); return join({ ...p, sent: String(NOW + 1) }); }, "bad_mac"],
    ["the nonce changed after signing (to dodge the replay check)", () => { const p = parts(sealed()); return join({ ...p, nonce: `${p.nonce.slice(0, -1)}${p.nonce.endsWith("A") ? "B" : "A"}` }); }, "bad_mac"],
    ["the MAC of another message", () => { const other = parts(sealRequest(keys, SUBJECT, `${BODY} `, NOW).payload); return join({ ...parts(sealed()), mac: other.mac }); }, "bad_mac"],
    ["a message signed for another subject", () => sealed(), "bad_mac", { subject: "coffer.wallet.3.11111111-2222-4333-8444-555555555555" }],
    ["a message signed for the same id on another prefix", () => sealed(), "bad_mac", { subject: SUBJECT.replace("coffer.", "other.") }],
    ["a message older than the window", () => sealRequest(keys, SUBJECT, BODY, NOW - MAX_AGE - 1).payload, "expired"],
    ["a message from further in the future than the window", () => sealRequest(keys, SUBJECT, BODY, NOW + MAX_AGE + 1).payload, "expired"],
  ];

  for (const [what, make, refusal, opts] of cases) {
    test(`${what}: ${refusal}`, () => {
      expect(open(make(), opts)).toEqual({ ok: false, refusal } as never);
    });
  }

  test("a message just inside the window either way is taken", () => {
    expect(open(sealRequest(keys, SUBJECT, BODY, NOW - MAX_AGE).payload).ok).toBe(true);
    expect(open(sealRequest(keys, SUBJECT, BODY, NOW + MAX_AGE).payload).ok).toBe(true);
  });

  test("the same signed message twice: taken once, then refused as a replay", () => {
    const replay = freshReplay();
    const payload = sealed();
    expect(open(payload, { replay }).ok).toBe(true);
    expect(open(payload, { replay, now: NOW + 1_000 })).toEqual({ ok: false, refusal: "replay" });
  });

  test("a forged copy of a seen message is refused for its MAC before it can spend the nonce", () => {
    const replay = freshReplay();
    const payload = sealed();
    const p = parts(payload);
    expect(open(join({ ...p, body: p.body.replace('"100"', '"999"') }), { replay })).toEqual({ ok: false, refusal: "bad_mac" });
    // The forgery did not use up the real message's nonce.
    expect(open(payload, { replay }).ok).toBe(true);
  });

  test("when the replay memory is full, new messages are refused as busy, and nothing is forgotten to make room", () => {
    const replay = new ReplayGuard(MAX_AGE, 2, NOW);
    const [a, b, c] = [sealed(), sealed(), sealed()];
    expect(open(a, { replay }).ok).toBe(true);
    expect(open(b, { replay }).ok).toBe(true);
    expect(open(c, { replay })).toEqual({ ok: false, refusal: "busy" });
    expect(open(a, { replay })).toEqual({ ok: false, refusal: "replay" });
  });

  test("a key ring with several keys opens messages under each, and a retired key's messages are refused", () => {
    const k2 = randomBytes(32);
    const both = BusKeys.of("c2", { c1: KEY, c2: k2 });
    expect(open(sealRequest(keys, SUBJECT, BODY, NOW).payload, { keys: both }).ok).toBe(true);
    expect(open(sealRequest(both, SUBJECT, BODY, NOW).payload, { keys: both }).ok).toBe(true);
    const onlyNew = BusKeys.of("c2", { c2: k2 });
    expect(open(sealRequest(keys, SUBJECT, BODY, NOW).payload, { keys: onlyNew })).toEqual({ ok: false, refusal: "unknown_key" });
  });
});

describe("the replay memory", () => {
  const WINDOW = 1_000;

  test("a nonce is fresh the first time and a replay after", () => {
    const guard = new ReplayGuard(WINDOW, 10, 0);
    expect(guard.admit("n1", 0)).toBe("fresh");
    expect(guard.admit("n1", 1)).toBe("replay");
    expect(guard.admit("n2", 1)).toBe("fresh");
  });

  test("a full generation refuses new nonces as full, still knows the old ones, and takes new ones after the next rotation", () => {
    const guard = new ReplayGuard(WINDOW, 2, 0);
    expect(guard.admit("a", 0)).toBe("fresh");
    expect(guard.admit("b", 0)).toBe("fresh");
    expect(guard.admit("c", 10)).toBe("full");
    expect(guard.admit("a", 10)).toBe("replay");
    // A refused "full" nonce was not remembered: the sender may try it again later.
    expect(guard.admit("c", 2 * WINDOW)).toBe("fresh");
    expect(guard.admit("a", 2 * WINDOW)).toBe("replay");
  });

  test("a nonce admitted just before a rotation is still a replay two windows later, and forgotten only after", () => {
    const guard = new ReplayGuard(WINDOW, 10, 0);
    expect(guard.admit("early", 0)).toBe("fresh");
    expect(guard.admit("late", 2 * WINDOW - 1)).toBe("fresh");
    expect(guard.admit("early", 2 * WINDOW)).toBe("replay"); // rotation: both in the previous generation
    expect(guard.admit("late", 2 * WINDOW)).toBe("replay");
    expect(guard.admit("late", 4 * WINDOW - 1)).toBe("replay"); // 2 windows after it was admitted: still known
    expect(guard.admit("early", 4 * WINDOW)).toBe("fresh"); // second rotation: forgotten
    expect(guard.admit("late", 4 * WINDOW)).toBe("fresh");
  });

  test("whatever the timing, no nonce is ever fresh twice within two windows of its admission", () => {
    // A message is valid for ±WINDOW around its own time, so the memory must outlive 2 × WINDOW.
    let seed = 42;
    const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const guard = new ReplayGuard(WINDOW, 100_000, 0);
    const admittedAt = new Map<string, number>();
    let now = 0;
    for (let i = 0; i < 20_000; i++) {
      now += Math.floor(rand() * 40);
      const nonce = `n${Math.floor(rand() * 3_000)}`;
      const answer = guard.admit(nonce, now);
      const last = admittedAt.get(nonce);
      if (last !== undefined && now - last <= 2 * WINDOW) expect(`${nonce} at ${now} (admitted ${last}): ${answer}`).toBe(`${nonce} at ${now} (admitted ${last}): replay`);
      if (answer === "fresh") admittedAt.set(nonce, now);
    }
  });
});

describe("replies", () => {
  test("a reply signed for another request's nonce is refused", () => {
    const mine = sealRequest(keys, SUBJECT, BODY, NOW).nonce;
    const other = sealRequest(keys, SUBJECT, BODY, NOW).nonce;
    expect(openReply(keys, mine, bytes(sealReply(keys, other, '{"status":201}')))).toBeUndefined();
  });

  test("a reply under a foreign key, with a changed body, unsigned, or too large is refused", () => {
    const nonce = sealRequest(keys, SUBJECT, BODY, NOW).nonce;
    const good = sealReply(keys, nonce, '{"status":201}');
    expect(openReply(keys, nonce, bytes(sealReply(BusKeys.of("c1", { c1: randomBytes(32) }), nonce, '{"status":201}')))).toBeUndefined();
    expect(openReply(keys, nonce, bytes(good.replace("201", "200")))).toBeUndefined();
    expect(openReply(keys, nonce, bytes('{"status":201}'))).toBeUndefined();
    expect(openReply(keys, nonce, bytes(`${good.split("\n")[0]}`))).toBeUndefined();
    expect(openReply(keys, nonce, bytes(`${good}${" ".repeat(BUS_PAYLOAD_MAX_BYTES)}`))).toBeUndefined();
    expect(openReply(keys, nonce, new Uint8Array([0xff, 0xfe, 0x0a]))).toBeUndefined();
    expect(openReply(keys, nonce, bytes(good))).toBe('{"status":201}');
  });

  test("a signed request cannot be passed off as a reply", () => {
    const { payload, nonce } = sealRequest(keys, SUBJECT, BODY, NOW);
    expect(openReply(keys, nonce, bytes(payload))).toBeUndefined();
  });
});

describe("the subject's kind", () => {
  const SHARDS = 8;
  const id = "0c9a3f0e-58a4-4a35-9f3a-1f0a6a2c9d11";
  const subjectFor = (kind: string) => `coffer.${kind}.${shardOf(id, SHARDS)}.${id}`;
  const claim = { idempotency: { scope: "admin:bus-unit", key: "k1", fingerprint: "f1" }, principal: { sub: "ops", role: "admin" as const, permissions: [] } };
  const at = new Date(NOW).toISOString();
  const walletCredit: Envelope = { kind: "wallet", command: { type: "wallet.credit", at, journalId: "0197a000-0000-7000-8000-000000000001", amount: 100n }, ...claim };
  const chamaFreeze: Envelope = { kind: "chama", command: { type: "chama.freeze", at, by: "m1" }, ...claim };
  const openOn = (subject: string, envelope: Envelope) => {
    const guard = new BusGuard(keys, { maxAgeMs: MAX_AGE, shardCount: SHARDS, logPerSecondMax: 0 }, () => NOW);
    const opened = guard.openCommand(subject, bytes(guard.sealCommand(subject, envelope).payload));
    return { opened: opened?.envelope.command.type, dropped: guard.dropped };
  };

  test("a wallet command opens on the wallet subject and a chama command on the chama subject", () => {
    expect(openOn(subjectFor("wallet"), walletCredit)).toEqual({ opened: "wallet.credit", dropped: {} });
    expect(openOn(subjectFor("chama"), chamaFreeze)).toEqual({ opened: "chama.freeze", dropped: {} });
  });

  test("a command on the other kind's subject, or on a subject of no kind, is dropped as wrong_shard", () => {
    expect(openOn(subjectFor("wallet"), chamaFreeze)).toEqual({ opened: undefined, dropped: { wrong_shard: 1 } });
    expect(openOn(subjectFor("chama"), walletCredit)).toEqual({ opened: undefined, dropped: { wrong_shard: 1 } });
    expect(openOn(subjectFor("teleport"), walletCredit)).toEqual({ opened: undefined, dropped: { wrong_shard: 1 } });
  });
});
