import { describe, expect, test } from "bun:test";
import { CreateWebhookEndpoint } from "../../src/api/webhook-schemas";
import { EVENT_TYPES, isPattern, publicData, subscribed } from "../../src/webhooks/event-types";
import { newSecret, signatureHeader, verifySignature } from "../../src/webhooks/signing";

/** What an endpoint may subscribe to, what it is sent, and how it is signed (no node needed). */
describe("subscriptions", () => {
  test("take known types, prefixes some type has, and *; refuse the rest", () => {
    for (const ok of ["*", "wallet.*", "wallet.paid", "chama.withdrawal.*", "chama.*", "deposit.refund.*", "withdrawal.changed"]) expect({ ok, valid: isPattern(ok) }).toEqual({ ok, valid: true });
    for (const bad of ["", "wallet", "wallet.", "wallet.pay", "wallets.*", ".*", "**", "*.paid", "webhook_endpoint.disabled", "webhook_endpoint.*", "alert.*"]) {
      expect({ bad, valid: isPattern(bad) }).toEqual({ bad, valid: false });
    }
    expect(CreateWebhookEndpoint.safeParse({ url: "https://hooks.example.com/x", events: ["wallet.pay"] }).success).toBe(false);
    expect(CreateWebhookEndpoint.safeParse({ url: "https://hooks.example.com/x", events: [] }).success).toBe(false);
    expect(CreateWebhookEndpoint.safeParse({ url: "https://hooks.example.com/x", events: ["wallet.*"], extra: 1 }).success).toBe(false);
  });

  test("match by exact type or prefix, and never an event outside the public list", () => {
    expect(subscribed(["wallet.*"], "wallet.paid")).toBe(true);
    expect(subscribed(["wallet.*"], "withdrawal.changed")).toBe(false);
    expect(subscribed(["chama.withdrawal.*"], "chama.withdrawal.changed")).toBe(true);
    expect(subscribed(["chama.withdrawal.*"], "chama.opened")).toBe(false);
    expect(subscribed(["*"], "webhook_endpoint.disabled")).toBe(false);
    expect(subscribed(["*"], "alert.opened")).toBe(false);
    for (const type of EVENT_TYPES) expect(subscribed(["*"], type)).toBe(true);
  });

  test("what is sent leaves out destinations and secrets at any depth", () => {
    const data = { type: "withdrawal.changed", amount: "100", destination: { type: "bank", account: "DE89…" }, nested: [{ iban: "x", token: "t", keep: 1 }], clientSecret: "pi_secret", status: "requested" };
    expect(publicData(data)).toEqual({ type: "withdrawal.changed", amount: "100", nested: [{ keep: 1 }], status: "requested" });
  });
});

describe("signatures", () => {
  test("are Stripe's scheme over the raw body, with a timestamp tolerance", () => {
    const secret = newSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9]{40}$/);
    expect(newSecret()).not.toBe(secret);
    const body = '{"id":"e1","type":"wallet.paid","created":"2025-01-01T00:00:00.000Z","data":{}}';
    const now = Date.now();
    const header = signatureHeader(secret, body, now);
    expect(verifySignature(body, header, secret, { nowMs: now })).toBe(true);
    expect(verifySignature(body, header, secret, { nowMs: now + 299_000 })).toBe(true);
    expect(verifySignature(body, header, secret, { nowMs: now + 301_000 })).toBe(false);
    expect(verifySignature(body, header, secret, { nowMs: now - 301_000 })).toBe(false);
    expect(verifySignature(`${body} `, header, secret, { nowMs: now })).toBe(false);
    expect(verifySignature(body, header.replace(/v1=(.)/, (_m, c: string) => `v1=${c === "0" ? "1" : "0"}`), secret, { nowMs: now })).toBe(false);
    expect(verifySignature(body, `${header},t=1`, secret, { nowMs: now })).toBe(false);
    expect(verifySignature(body, null, secret)).toBe(false);
    // Several v1 signatures (as during a secret's rotation): any one will do.
    expect(verifySignature(body, `${header},v1=${"0".repeat(64)}`, secret, { nowMs: now })).toBe(true);
  });
});
