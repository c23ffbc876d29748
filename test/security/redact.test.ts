import { describe, expect, test } from "bun:test";
import { quote, redact, redactDeep, redactSecrets } from "../../lib/redact";

/** Vectors for the redactor: what must never survive, and what must stay readable. */
describe("secrets are removed outright", () => {
  test.each([
    ["a JWT", "token eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLWJ5dGVz here", "eyJ"],
    ["a bearer header", "Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"],
    ["a Stripe secret key", "using sk_live_51HxYzAbCdEfGhIjKlMn", "sk_live_51Hx"],
    ["a Stripe test key", "sk_test_abcdefghijklmnop", "sk_test_abcdefgh"],
    ["a webhook secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ"],
    ["a password in a query string", "GET /login?user=a&password=hunter22&x=1", "hunter22"],
    ["an api key assignment", 'config api_key="abc123secret"', "abc123secret"],
    ["a raw 32-byte private key", "key 4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318", "4c0883a69102937d"],
    ["a PEM private key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIC\n-----END PRIVATE KEY-----", "MC4CAQAw"],
  ])("%s", (_name, input, secret) => {
    const out = redact(input);
    expect(out).not.toContain(secret);
  });
});

describe("addresses and numbers keep only their ends", () => {
  test("an EVM address", () => {
    const out = redact("send to 0x52908400098527886E0F7030069857D2E4169EE7 now");
    expect(out).toBe("send to 0x5290…9EE7 now");
  });
  test("a bech32 Bitcoin address", () => {
    const out = redact("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq");
    expect(out).not.toContain("ar0srrr7xfkvy5l643lydnw9re59gtzz");
    expect(out.startsWith("bc1qar")).toBe(true);
  });
  test("a legacy Bitcoin address", () => {
    expect(redact("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")).toBe("1BvB…NVN2");
  });
  test("a Solana address", () => {
    expect(redact("to 7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV please")).toBe("to 7EcD…FLtV please");
  });
  test.each([
    ["a bank account", "account 12345678901234", "account ****1234"],
    ["a card number with spaces", "card 4242 4242 4242 4242", "card ****4242"],
    ["a phone number with dashes", "call 254-712-345-678", "call ****5678"],
  ])("%s", (_name, input, expected) => {
    expect(redact(input)).toBe(expected);
  });
});

describe("ordinary text survives", () => {
  test.each([
    "the available balance does not cover this amount",
    "wallet 01a20756-1b92-756b-a78d-867617a83bd6 not found",
    "12345678-1234-4abc-8def-123456789012",
    "amount 1234.56 USD",
    "order-42 of 2026-11-23",
  ])("%s", (text) => {
    expect(redact(text)).toBe(text);
  });
});

test("structured log fields are redacted at any depth", () => {
  const out = redactDeep({ msg: "x", nested: { list: ["Bearer abcdefghijklmnop"], n: 5 } });
  expect(out).toEqual({ msg: "x", nested: { list: ["Bearer [token]"], n: 5 } });
});

describe("our own sentences keep our numbers; what they quote is redacted where it is quoted", () => {
  test("a maximum, an id and a count of ours survive the check every detail gets on its way out", () => {
    const text = "invalid input: body.amount: amount exceeds the maximum of 1000000000.00; wallet 01a20756-1b92-756b-a78d-867617a83bd6; 123456789012 rows";
    expect(redactSecrets(text)).toBe(text);
  });

  test("secrets are still removed from a detail, whatever put them there", () => {
    expect(redactSecrets("Bearer abcdefghijklmnop1234 and sk_live_51HxYzAbCdEfGhIjKlMn")).toBe("Bearer [token] and [secret]");
  });

  test("field names in our messages are not mistaken for name=value secrets", () => {
    expect(redactSecrets("invalid input: body.destination.token: a Stripe bank account")).toBe("invalid input: body.destination.token: a Stripe bank account");
  });

  test("a caller's text quoted is clipped and redacted: an account number keeps its last four", () => {
    expect(quote("4111111111111111")).toBe("****1111");
    expect(quote("ab_".repeat(40), 32)).toBe(`${"ab_".repeat(40).slice(0, 32)}…`);
    expect(quote("wanjiku")).toBe("wanjiku");
  });
});
