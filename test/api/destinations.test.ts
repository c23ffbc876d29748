import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Destination } from "../../src/api/schemas";
import { maskDestination } from "../../src/api/views";
import { isAbaRouting, isIban } from "../../lib/bank-accounts";
import { payoutMismatch } from "../../lib/networks";
import { user } from "../support/auth";
import { fundedWallet, startTestNode, type TestNode } from "../support/node";
import { expectProblem } from "../support/problem";

/**
 * Where payouts may go: bank numbers checked as far as a number can be (an IBAN's country, length
 * and mod-97 check digits; an ABA routing checksum; a Kenyan account's shape; a provider token),
 * shown masked to their last four at most, and an asset sent only where it can travel.
 */
const parse = (d: unknown) => Destination.safeParse(d);

describe("IBANs", () => {
  const valid = [
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "BE68 5390 0754 7034",
    "CH93 0076 2011 6238 5295 7",
    "NO93 8601 1117 947",
    "ES91 2100 0418 4502 0005 1332",
    "IT60 X054 2811 1010 0000 0123 456",
    "SA03 8000 0000 6080 1016 7519",
    "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
    "gb82 west 1234 5698 7654 32",
  ];
  test.each(valid)("%s is accepted, in its electronic form", (iban) => {
    const parsed = parse({ type: "bank", account: iban });
    expect(parsed.success).toBe(true);
    expect(parsed.data).toEqual({ type: "bank", account: iban.replace(/ /g, "").toUpperCase() });
  });

  test("every valid IBAN with one digit changed is refused (the mod-97 check catches it)", () => {
    for (const iban of valid) {
      const compact = iban.replace(/ /g, "").toUpperCase();
      // Each position after the country code, each digit there replaced by the next one.
      for (let i = 2; i < compact.length; i++) {
        const ch = compact[i]!;
        if (!/[0-9]/.test(ch)) continue;
        const changed = compact.slice(0, i) + String((Number(ch) + 1) % 10) + compact.slice(i + 1);
        expect({ changed, valid: isIban(changed) }).toEqual({ changed, valid: false });
      }
    }
  });

  test.each([
    ["a single character", "x"],
    ["too short for its country", "DE89 3704 0044"],
    ["too long for its country", "DE89 3704 0044 0532 0130 0000"],
    ["a country that has no IBAN", "KE12 3456 7890 1234 5678"],
    ["letters where check digits go", "DEXX 3704 0044 0532 0130 00"],
    ["punctuation", "DE89-3704-0044-0532-0130-00"],
    ["empty", ""],
    ["a bare account number", "12345678"],
  ])("%s is refused, naming the field and not the value", (_name, account) => {
    const parsed = parse({ type: "bank", account });
    expect(parsed.success).toBe(false);
    const issue = parsed.error!.issues[0]!;
    expect(issue.path).toEqual(["account"]);
    if (account.length > 3) expect(issue.message).not.toContain(account);
  });
});

describe("domestic accounts and provider tokens", () => {
  test("a US account needs a routing number with a valid ABA checksum and 4 to 17 digits", () => {
    expect(isAbaRouting("021000021")).toBe(true);
    expect(isAbaRouting("011000015")).toBe(true);
    expect(isAbaRouting("021000022")).toBe(false);
    expect(isAbaRouting("991000021")).toBe(false);
    expect(parse({ type: "us_bank", routing: "021000021", account: "000123456789" }).success).toBe(true);
    expect(parse({ type: "us_bank", routing: "021000022", account: "000123456789" }).error?.issues[0]?.path).toEqual(["routing"]);
    expect(parse({ type: "us_bank", routing: "021000021", account: "123" }).error?.issues[0]?.path).toEqual(["account"]);
    expect(parse({ type: "us_bank", routing: "021000021", account: "1".repeat(18) }).success).toBe(false);
  });

  test("a Kenyan account needs a two-digit bank code and 6 to 16 digits", () => {
    expect(parse({ type: "ke_bank", bankCode: "68", account: "0123 4567 89" }).data).toEqual({ type: "ke_bank", bankCode: "68", account: "0123456789" });
    expect(parse({ type: "ke_bank", bankCode: "068", account: "0123456789" }).success).toBe(false);
    expect(parse({ type: "ke_bank", bankCode: "68", account: "12345" }).success).toBe(false);
    expect(parse({ type: "ke_bank", bankCode: "68", account: "12345x789" }).success).toBe(false);
  });

  test("a provider token is a Stripe bank account or bank token", () => {
    expect(parse({ type: "bank_token", token: "ba_1NxYzAbCdEfGhIjK" }).success).toBe(true);
    expect(parse({ type: "bank_token", token: "btok_1NxYzAbCdEfGhIjK" }).success).toBe(true);
    expect(parse({ type: "bank_token", token: "x" }).success).toBe(false);
    expect(parse({ type: "bank_token", token: "pm_1NxYzAbCdEfGhIjK" }).success).toBe(false);
  });

  test("a connected account is a Stripe account id (acct_…)", () => {
    expect(parse({ type: "stripe_account", account: "acct_1032D82eZvKYlo2C" }).success).toBe(true);
    expect(parse({ type: "stripe_account", account: "acct_x" }).success).toBe(false);
    expect(parse({ type: "stripe_account", account: "ba_1NxYzAbCdEfGhIjK" }).success).toBe(false);
  });

  test("an unknown kind, or a network nobody carries, is refused", () => {
    expect(parse({ type: "cash", account: "1" }).success).toBe(false);
    expect(parse({ type: "crypto", network: "dogechain", address: "D8vFz4p1L37jdg9xpL3J5s2kqkJv6fJwWz" }).success).toBe(false);
  });
});

describe("masking", () => {
  test("a long value shows its last four characters, never more", () => {
    expect(maskDestination({ type: "bank", account: "DE89370400440532013000" })).toEqual({ type: "bank", account: "****3000" });
    expect(maskDestination({ type: "us_bank", routing: "021000021", account: "000123456789" })).toEqual({ type: "us_bank", account: "****6789" });
    expect(maskDestination({ type: "bank_token", token: "ba_1NxYzAbCdEfGhIjK" })).toEqual({ type: "bank_token", token: "****hIjK" });
    expect(maskDestination({ type: "stripe_account", account: "acct_1032D82eZvKYlo2C" })).toEqual({ type: "stripe_account", account: "****lo2C" });
  });

  test("a value of eight characters or fewer shows nothing of itself", () => {
    expect(maskDestination({ type: "ke_bank", bankCode: "68", account: "12345678" })).toEqual({ type: "ke_bank", account: "****" });
    expect(maskDestination({ type: "ke_bank", bankCode: "68", account: "123456789" })).toEqual({ type: "ke_bank", account: "****6789" });
    expect(maskDestination({ type: "bank", account: "x" })).toEqual({ type: "bank", account: "****" });
  });
});

describe("which asset goes where", () => {
  test.each([
    ["BTC", "bitcoin"],
    ["BTC", "lightning"],
    ["ETH", "ethereum"],
    ["USDC", "base"],
    ["USDC", "solana"],
    ["SOL", "solana"],
    ["NEAR", "near"],
    ["TON", "ton"],
  ] as const)("%s travels on %s", (asset, network) => {
    expect(payoutMismatch(asset, { type: "crypto", network })).toBeUndefined();
  });

  test.each([
    ["USD", { type: "crypto", network: "ethereum" }, "destination.type"],
    ["KES", { type: "crypto", network: "bitcoin" }, "destination.type"],
    ["BTC", { type: "crypto", network: "ethereum" }, "destination.network"],
    ["SOL", { type: "crypto", network: "polygon" }, "destination.network"],
    ["NEAR", { type: "crypto", network: "ethereum" }, "destination.network"],
    ["TON", { type: "crypto", network: "near" }, "destination.network"],
    ["ETH", { type: "crypto", network: "nowhere" }, "destination.network"],
    ["ETH", { type: "bank", account: "DE89370400440532013000" }, "destination.type"],
  ] as const)("%s to %j is refused, blaming %s", (asset, destination, field) => {
    expect(payoutMismatch(asset, destination)?.field).toBe(field);
  });
});

describe("over HTTP", () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode("destinations");
  });
  afterAll(() => t.stop());

  const ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7";

  test("a bank destination of \"x\" is a 400 naming the field, and nothing is held", async () => {
    const wallet = await fundedWallet(t.api, "USD", "10.00");
    const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: { type: "bank", account: "x" } });
    expectProblem(res, 400, "VALIDATION_FAILED");
    expect(res.body.errors.map((e: { path: string }) => e.path)).toEqual(["body.destination.account"]);
    expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.held).toBe("0.00");
  });

  test("a USD wallet paying out to ethereum is a 400 UNSUPPORTED_NETWORK, and nothing is held", async () => {
    const wallet = await fundedWallet(t.api, "USD", "10.00");
    const res = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "1.00", destination: { type: "crypto", network: "ethereum", address: ETH_ADDRESS } });
    expectProblem(res, 400, "UNSUPPORTED_NETWORK");
    expect(res.body.errors).toEqual([{ path: "body.destination.type", message: "USD pays out to bank accounts only" }]);
    expect((await t.api("GET", `/v1/wallets/${wallet}`)).body.balance.held).toBe("0.00");
  });

  test("a BTC wallet paying out to ethereum is refused, to bitcoin accepted", async () => {
    const wallet = await fundedWallet(t.api, "BTC", "1.0");
    const wrong = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.1", destination: { type: "crypto", network: "ethereum", address: ETH_ADDRESS } });
    expectProblem(wrong, 400, "UNSUPPORTED_NETWORK");
    expect(wrong.body.errors[0].path).toBe("body.destination.network");
    const right = await t.api("POST", `/v1/wallets/${wallet}/withdrawals`, { amount: "0.1", destination: { type: "crypto", network: "bitcoin", address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" } });
    expect(right.status).toBe(201);
    expect(right.body.destination).toEqual({ type: "crypto", network: "bitcoin", address: "bc1qar…5mdq" });
  });

  test("a KES chama paying out to bitcoin is a 400 UNSUPPORTED_NETWORK; to a Kenyan account it is accepted and masked", async () => {
    const admin = user("kes-admin");
    const chama = await t.api("POST", "/v1/chamas", { name: "Umoja", asset: "KES" }, { as: admin });
    const id = chama.body.id as string;
    await t.api("POST", `/v1/chamas/${id}/members`, { memberId: "kes-second", role: "admin" }, { as: admin });
    expect((await t.api("POST", `/v1/chamas/${id}/deposits`, { memberId: "kes-admin", amount: "100.00" })).status).toBe(201);
    const wrong = await t.api("POST", `/v1/chamas/${id}/withdrawals`, { amount: "1.00", destination: { type: "crypto", network: "bitcoin", address: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" } }, { as: admin });
    expectProblem(wrong, 400, "UNSUPPORTED_NETWORK");
    expect(wrong.body.errors).toEqual([{ path: "body.destination.type", message: "KES pays out to bank accounts only" }]);
    expect((await t.api("GET", `/v1/chamas/${id}/withdrawals`, undefined, { as: admin })).body.items).toEqual([]);
    const right = await t.api("POST", `/v1/chamas/${id}/withdrawals`, { amount: "1.00", destination: { type: "ke_bank", bankCode: "68", account: "0123456789" } }, { as: admin });
    expect(right.status).toBe(201);
    expect(right.body.destination).toEqual({ type: "ke_bank", account: "****6789" });
  });
});
