import { describe, expect, test } from "bun:test";
import { sha256 } from "@noble/hashes/sha2.js";
import { base58, base64, bech32, createBase58check, hex } from "@scure/base";
import { Address, crc16 } from "@ton/core";
import bolt11 from "bolt11";
import { ADDRESS_RULES, validateAddress, type AddressCheck, type AddressRule, type LightningNetwork } from "../../lib/addresses";
import { segwitProgram } from "../../lib/addresses/bitcoin";
import type { Asset } from "../../lib/assets";
import { NETWORK_ASSETS, NETWORKS, type Network } from "../../lib/networks";
import { redact } from "../../lib/redact";

/**
 * Every payout address rule, against published vectors where they exist (BIP-173, BIP-350,
 * EIP-55, BOLT-11) and against addresses built here with the networks' own libraries. Pure: no
 * database, no clock but the one each call is given.
 */
const NOW = new Date("2026-01-15T12:00:00Z");

function check(network: Network, address: string, options: { asset?: Asset; amountMinor?: bigint; now?: Date; lightningNetwork?: LightningNetwork } = {}): AddressCheck {
  return validateAddress(network, address, {
    asset: options.asset ?? NETWORK_ASSETS[network][0],
    amountMinor: options.amountMinor ?? 1n,
    now: options.now ?? NOW,
    ...(options.lightningNetwork ? { lightningNetwork: options.lightningNetwork } : {}),
  });
}

const ruleOf = (result: AddressCheck): AddressRule | "ok" => (result.ok ? "ok" : result.rule);

describe("every rule has a sentence of ours", () => {
  test("no sentence is empty, and none quotes anything of an address", () => {
    for (const [rule, sentence] of Object.entries(ADDRESS_RULES)) {
      expect({ rule, long: sentence.length > 10 }).toEqual({ rule, long: true });
    }
  });
});

describe("bitcoin: BIP-350 segwit addresses", () => {
  // BIP-350 "Test vectors for v0-v16 native segregated witness addresses", valid, with the scriptPubKey each stands for.
  const valid: [string, string][] = [
    ["BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"],
    ["tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"],
    ["bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"],
    ["BC1SW50QGDZ25J", "6002751e"],
    ["bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"],
    ["tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"],
    ["tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"],
    ["bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"],
  ];
  const networkOf = (address: string): Network => (address.toLowerCase().startsWith("tb1") ? "bitcoin-testnet" : "bitcoin");

  test.each(valid)("%s is accepted on its network and decodes to its scriptPubKey", (address, script) => {
    expect(ruleOf(check(networkOf(address), address))).toBe("ok");
    const decoded = segwitProgram(address)!;
    const version = decoded.version === 0 ? "00" : (0x50 + decoded.version).toString(16);
    expect(version + decoded.program.length.toString(16).padStart(2, "0") + hex.encode(decoded.program)).toBe(script);
  });

  test.each(valid)("%s is refused on the other network (its prefix is the other one's)", (address) => {
    const other = networkOf(address) === "bitcoin" ? "bitcoin-testnet" : "bitcoin";
    expect(ruleOf(check(other, address))).toBe("network");
  });

  // BIP-350's invalid list, each with the rule that refuses it.
  test.each([
    ["tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "network", "invalid human-readable part"],
    ["bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "checksum-variant", "Bech32 instead of Bech32m"],
    ["tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "checksum-variant", "Bech32 instead of Bech32m"],
    ["BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "checksum-variant", "Bech32 instead of Bech32m"],
    ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "checksum-variant", "Bech32m instead of Bech32"],
    ["tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "checksum-variant", "Bech32m instead of Bech32"],
    ["bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "characters", "invalid character in checksum"],
    ["BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "witness-version", "invalid witness version"],
    ["bc1pw5dgrnzv", "program-length", "program of 1 byte"],
    ["bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", "program-length", "program of 41 bytes"],
    ["BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "program-length", "v0 program of 16 bytes (BIP-141)"],
    ["tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "mixed-case", "mixed case"],
    ["bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "padding", "zero padding of more than 4 bits"],
    ["tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", "padding", "non-zero padding in 8-to-5 conversion"],
    ["bc1gmk9yu", "format", "empty data section"],
  ] as const)("%s is refused: %s (%s)", (address, rule) => {
    expect(ruleOf(check(networkOf(address), address))).toBe(rule);
  });
});

describe("bitcoin: BIP-173 vectors, as BIP-350 amended them", () => {
  test.each([
    "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
    "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
  ])("the version 0 address %s is accepted", (address) => {
    expect(ruleOf(check(address.toLowerCase().startsWith("tb") ? "bitcoin-testnet" : "bitcoin", address))).toBe("ok");
  });

  // BIP-173's valid v1+ addresses carry Bech32 checksums, which BIP-350 replaced with Bech32m.
  test.each(["bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx", "BC1SW50QA3JX3S", "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj"])(
    "the version 1+ address %s, in Bech32, is refused",
    (address) => {
      expect(ruleOf(check("bitcoin", address))).toBe("checksum-variant");
    },
  );

  test.each([
    ["tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", "network", "invalid human-readable part"],
    ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "checksum", "invalid checksum"],
    ["BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2", "witness-version", "invalid witness version"],
    ["bc1rw5uspcuh", "program-length", "invalid program length"],
    ["bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90", "program-length", "invalid program length"],
    ["BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "program-length", "invalid program length for witness version 0"],
    ["tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7", "mixed-case", "mixed case"],
    ["bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "padding", "zero padding of more than 4 bits"],
    ["tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv", "padding", "non-zero padding in 8-to-5 conversion"],
    ["bc1gmk9yu", "format", "empty data section"],
  ] as const)("%s is refused: %s (%s)", (address, rule) => {
    expect(ruleOf(check(address.toLowerCase().startsWith("tb") ? "bitcoin-testnet" : "bitcoin", address))).toBe(rule);
  });

  test("a segwit address longer than 90 characters is refused", () => {
    expect(ruleOf(check("bitcoin", `bc1q${"q".repeat(90)}`))).toBe("length");
  });
});

describe("bitcoin: base58check P2PKH and P2SH", () => {
  const b58check = createBase58check(sha256);
  const hash = Uint8Array.from({ length: 20 }, (_, i) => i * 7 + 3);
  const encode = (version: number) => b58check.encode(Uint8Array.of(version, ...hash));

  test.each([
    ["bitcoin", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "P2PKH"],
    ["bitcoin", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "P2SH"],
    ["bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "P2PKH (the genesis block's)"],
    ["bitcoin-testnet", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "P2PKH"],
    ["bitcoin-testnet", "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "P2SH"],
    ["bitcoin", encode(0x00), "P2PKH built here"],
    ["bitcoin", encode(0x05), "P2SH built here"],
    ["bitcoin-testnet", encode(0x6f), "P2PKH built here"],
    ["bitcoin-testnet", encode(0xc4), "P2SH built here"],
  ] as const)("on %s, %s (%s) is accepted", (network, address) => {
    expect(ruleOf(check(network, address))).toBe("ok");
  });

  test("each network refuses the other's version bytes", () => {
    for (const version of [0x6f, 0xc4]) expect(ruleOf(check("bitcoin", encode(version)))).toBe("network");
    for (const version of [0x00, 0x05]) expect(ruleOf(check("bitcoin-testnet", encode(version)))).toBe("network");
    expect(ruleOf(check("bitcoin", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"))).toBe("network");
    expect(ruleOf(check("bitcoin-testnet", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"))).toBe("network");
  });

  test("a version byte of another coin (Litecoin's 0x30) is refused", () => {
    expect(ruleOf(check("bitcoin", encode(0x30)))).toBe("version");
  });

  test("every single-character change to a valid address is refused (the checksum catches it)", () => {
    const address = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";
    const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    for (let i = 1; i < address.length; i++) {
      const changed = address.slice(0, i) + alphabet[(alphabet.indexOf(address[i]!) + 1) % alphabet.length] + address.slice(i + 1);
      expect({ changed, rule: ruleOf(check("bitcoin", changed)) }).toEqual({ changed, rule: "checksum" });
    }
  });

  test("characters base58 never uses (0, O, I, l) and a payload of the wrong size are refused", () => {
    expect(ruleOf(check("bitcoin", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN0"))).toBe("characters");
    expect(ruleOf(check("bitcoin", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVNl"))).toBe("characters");
    expect(ruleOf(check("bitcoin", " 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"))).toBe("characters");
    expect(ruleOf(check("bitcoin", b58check.encode(Uint8Array.of(0x00, ...hash, 1))))).toBe("length");
    expect(ruleOf(check("bitcoin", ""))).toBe("characters");
  });
});

describe("EVM networks: EIP-55", () => {
  // The EIP's own examples: all caps, all lower, and mixed-case checksummed.
  const allCaps = ["0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D"];
  const allLower = ["0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26"];
  const checksummed = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
  ];
  const evmNetworks = NETWORKS.filter((n) => (NETWORK_ASSETS[n] as readonly string[]).includes("ETH"));

  test("the EVM networks are the eight the issue names", () => {
    expect(evmNetworks).toEqual(["ethereum", "polygon", "base", "arbitrum", "optimism", "bsc", "avalanche", "linea"]);
  });

  test.each([...allCaps, ...allLower, ...checksummed])("%s is accepted on every EVM network, for ETH and USDC", (address) => {
    for (const network of evmNetworks) {
      expect(ruleOf(check(network, address, { asset: "ETH" }))).toBe("ok");
      expect(ruleOf(check(network, address, { asset: "USDC" }))).toBe("ok");
    }
  });

  test.each(checksummed)("%s written all lower or all upper case is accepted (no checksum to check)", (address) => {
    expect(ruleOf(check("ethereum", address.toLowerCase()))).toBe("ok");
    expect(ruleOf(check("ethereum", `0x${address.slice(2).toUpperCase()}`))).toBe("ok");
  });

  test.each(checksummed)("%s with any one letter's case flipped is refused", (address) => {
    let flips = 0;
    for (let i = 2; i < address.length; i++) {
      const ch = address[i]!;
      if (!/[a-fA-F]/.test(ch)) continue;
      const flipped = address.slice(0, i) + (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase()) + address.slice(i + 1);
      expect({ flipped, rule: ruleOf(check("base", flipped)) }).toEqual({ flipped, rule: "eip55" });
      flips++;
    }
    expect(flips).toBeGreaterThan(10);
  });

  test.each([
    ["no 0x", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "format"],
    ["0X in capitals", "0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", "format"],
    ["39 hex digits", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", "length"],
    ["41 hex digits", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed0", "length"],
    ["a g", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "format"],
    ["an ICAP address", "XE7338O073KYGTWWZN0F2WZ0R8PX5ZPPZS", "format"],
    ["a space", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed ", "format"],
    ["an ENS name", "vitalik.eth", "format"],
  ] as const)("%s is refused", (_name, address, rule) => {
    expect(ruleOf(check("ethereum", address))).toBe(rule);
  });
});

describe("solana: base58 of exactly 32 bytes", () => {
  const random32 = Uint8Array.from({ length: 32 }, (_, i) => (i * 73 + 41) % 256);

  test.each([
    ["the System Program", "11111111111111111111111111111111"],
    ["the Token Program", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"],
    ["the users' example", "7EqQdEULxWcraVx3mXKFjc84LhCkMGZCkRuDpvcMwJeK"],
    ["a 32-byte key encoded here", base58.encode(random32)],
    ["a random key", base58.encode(crypto.getRandomValues(new Uint8Array(32)))],
  ])("%s (%s) is accepted, for SOL and USDC", (_name, address) => {
    expect(ruleOf(check("solana", address, { asset: "SOL" }))).toBe("ok");
    expect(ruleOf(check("solana", address, { asset: "USDC" }))).toBe("ok");
  });

  test("31 and 33 bytes are refused", () => {
    expect(ruleOf(check("solana", base58.encode(random32.subarray(1))))).toBe("length");
    expect(ruleOf(check("solana", base58.encode(Uint8Array.of(...random32, 7))))).toBe("length");
    expect(ruleOf(check("solana", "1111111111111111111111111111111"))).toBe("length");
    expect(ruleOf(check("solana", "111111111111111111111111111111111"))).toBe("length");
  });

  test("characters base58 never uses are refused", () => {
    for (const bad of ["0", "O", "I", "l", "+", " "]) {
      expect(ruleOf(check("solana", `7EqQdEULxWcraVx3mXKFjc84LhCkMGZCkRuDpvcMwJe${bad}`))).toBe("characters");
    }
  });

  test("an EVM address is not a Solana one", () => {
    expect(ruleOf(check("solana", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"))).toBe("characters");
  });
});

describe("near: named and implicit accounts", () => {
  test.each([
    "alice.near",
    "test.testnet",
    "ab",
    "a1",
    "near",
    "app.alice.near",
    "alice-bob_carol.near",
    "0o0ooo00oo00o",
    "100",
    "a".repeat(64),
    "98793cd91a3f870fb126f66285808c7e094afcfc4eda8a970f6648cdf0dbd6de",
  ])("%s is accepted", (account) => {
    expect(ruleOf(check("near", account))).toBe("ok");
  });

  test.each([
    ["a", "length", "one character"],
    ["a".repeat(65), "length", "65 characters"],
    ["", "length", "empty"],
    ["Alice.near", "characters", "upper case"],
    ["98793CD91A3F870FB126F66285808C7E094AFCFC4EDA8A970F6648CDF0DBD6DE", "characters", "an implicit account in upper case"],
    ["alice near", "characters", "a space"],
    ["alice@near", "characters", "an @"],
    ["alice..near", "separators", "two dots in a row"],
    ["alice-_near", "separators", "two separators in a row"],
    [".alice", "separators", "a leading dot"],
    ["alice.", "separators", "a trailing dot"],
    ["-alice", "separators", "a leading dash"],
    ["alice_", "separators", "a trailing underscore"],
    ["__", "separators", "separators only"],
  ] as const)("%s is refused: %s (%s)", (account, rule) => {
    expect(ruleOf(check("near", account))).toBe(rule);
  });

  test("NEAR carries only NEAR", () => {
    expect(ruleOf(check("near", "alice.near", { asset: "NEAR" }))).toBe("ok");
    expect(ruleOf(check("near", "alice.near", { asset: "ETH" }))).toBe("asset");
  });
});

describe("ton: raw and user-friendly addresses", () => {
  const hash = Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 5) % 256));
  const friendly = (workchain: number, options: { bounceable: boolean; urlSafe: boolean; testOnly: boolean }) => new Address(workchain, hash).toString(options);
  /** A friendly address's bytes with one changed (and its CRC recomputed unless told not to). */
  const altered = (address: string, index: number, value: number, fixCrc = true) => {
    const bytes = Buffer.from(base64.decode(address.replace(/-/g, "+").replace(/_/g, "/")));
    bytes[index] = value;
    if (fixCrc) bytes.set(crc16(bytes.subarray(0, 34)), 34);
    return base64.encode(bytes);
  };

  test.each([
    `0:${hash.toString("hex")}`,
    `-1:${hash.toString("hex")}`,
    `0:${hash.toString("hex").toUpperCase()}`,
    "0:8a8627861a5dd96c9db3ce0807b122da5ed473934ce7568a5b4b1c361cbb28ae",
    "-1:8a8627861a5dd96c9db3ce0807b122da5ed473934ce7568a5b4b1c361cbb28ae",
  ])("the raw address %s is accepted", (address) => {
    expect(ruleOf(check("ton", address))).toBe("ok");
  });

  test("every friendly form is accepted: bounceable or not, url-safe or not, testnet flag or not, workchain 0 or -1", () => {
    let forms = 0;
    for (const workchain of [0, -1]) {
      for (const bounceable of [true, false]) {
        for (const urlSafe of [true, false]) {
          for (const testOnly of [true, false]) {
            const address = friendly(workchain, { bounceable, urlSafe, testOnly });
            expect({ address, rule: ruleOf(check("ton", address)) }).toEqual({ address, rule: "ok" });
            forms++;
          }
        }
      }
    }
    expect(forms).toBe(16);
  });

  test("published friendly addresses are accepted (the users' example, url-safe with a '-')", () => {
    expect(ruleOf(check("ton", "EQD-cvR0Nz6XAyRBvbhz-abTrRC6sI5tvHvvpeQraV9UAAD7"))).toBe("ok");
    expect(ruleOf(check("ton", "EQD-cvR0Nz6XAyRBvbhz+abTrRC6sI5tvHvvpeQraV9UAAD7"))).toBe("ok");
  });

  test("a flipped CRC byte is refused, as is a changed account byte under the old CRC", () => {
    const address = friendly(0, { bounceable: true, urlSafe: true, testOnly: false });
    const bytes = base64.decode(address.replace(/-/g, "+").replace(/_/g, "/"));
    expect(ruleOf(check("ton", altered(address, 35, bytes[35]! ^ 0x01, false)))).toBe("checksum");
    expect(ruleOf(check("ton", altered(address, 34, bytes[34]! ^ 0x80, false)))).toBe("checksum");
    expect(ruleOf(check("ton", altered(address, 10, bytes[10]! ^ 0x01, false)))).toBe("checksum");
  });

  test("workchain 1 is refused, raw or friendly (with a correct CRC)", () => {
    expect(ruleOf(check("ton", friendly(1, { bounceable: true, urlSafe: true, testOnly: false })))).toBe("workchain");
    expect(ruleOf(check("ton", altered(friendly(0, { bounceable: true, urlSafe: true, testOnly: false }), 1, 0x01)))).toBe("workchain");
    expect(ruleOf(check("ton", `1:${hash.toString("hex")}`))).toBe("workchain");
    expect(ruleOf(check("ton", `-2:${hash.toString("hex")}`))).toBe("workchain");
  });

  test("an unknown tag byte is refused even with a correct CRC", () => {
    const address = friendly(0, { bounceable: true, urlSafe: true, testOnly: false });
    for (const tag of [0x00, 0x12, 0x50, 0xff]) expect(ruleOf(check("ton", altered(address, 0, tag)))).toBe("tag");
  });

  test("wrong lengths and shapes are refused", () => {
    const address = friendly(0, { bounceable: true, urlSafe: true, testOnly: false });
    expect(ruleOf(check("ton", address.slice(1)))).toBe("length");
    expect(ruleOf(check("ton", `${address}A`))).toBe("length");
    expect(ruleOf(check("ton", `0:${hash.toString("hex").slice(1)}`))).toBe("length");
    expect(ruleOf(check("ton", `0:${hash.toString("hex")}00`))).toBe("length");
    expect(ruleOf(check("ton", `0:${hash.toString("hex").slice(1)}g`))).toBe("format");
    expect(ruleOf(check("ton", `${address.slice(0, 47)}!`))).toBe("characters");
  });

  test("TON carries only TON", () => {
    expect(ruleOf(check("ton", "EQD-cvR0Nz6XAyRBvbhz-abTrRC6sI5tvHvvpeQraV9UAAD7", { asset: "USDC" }))).toBe("asset");
  });
});

describe("lightning: BOLT-11 invoices", () => {
  // BOLT-11's examples, all signed with this key at timestamp 1496314658 (or 1572468703).
  const PRIVATE_KEY = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734";
  const EXAMPLE_TIME = new Date((1496314658 + 30) * 1000);
  const DONATION = "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq8rkx3yf5tcsyz3d73gafnh3cax9rn449d9p5uxz9ezhhypd0elx87sjle52x86fux2ypatgddc6k63n7erqz25le42c4u4ecky03ylcqca784w";
  const COFFEE_60S = "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspfj9srp";
  const NONSENSE_60S = "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny";
  const CAKE = "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqscc6gd6ql3jrc5yzme8v4ntcewwz5cnw92tz0pc8qcuufvq7khhr8wpald05e92xw006sq94mg8v2ndf4sefvf9sygkshp5zfem29trqq2yxxz7";
  const TESTNET_CAKE = "lntb20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un98kmzzhznpurw9sgl2v0nklu2g4d0keph5t7tj9tcqd8rexnd07ux4uv2cjvcqwaxgj7v4uwn5wmypjd5n69z2xm3xgksg28nwht7f6zspwp3f9t";
  const ROUTED = "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4grqszsvpcgpy9qqqqqqgqqqqq7qqzqj9n4evl6mr5aj9f58zp6fyjzup6ywn3x6sk8akg5v4tgn2q8g4fhx05wf6juaxu9760yp46454gpg5mtzgerlzezqcqvjnhjh8z3g2qqdhhwkj";
  const COFFEE_BEANS = "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu";
  const PICO = "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd2ht2sqe4hz8thcdagpleym0j";

  const sats = (n: bigint) => ({ amountMinor: n, now: EXAMPLE_TIME });

  test("BOLT-11's examples are accepted at their amounts, before they expire", () => {
    expect(ruleOf(check("lightning", DONATION, sats(1n)))).toBe("ok");
    expect(ruleOf(check("lightning", DONATION, sats(123_456_789n)))).toBe("ok");
    expect(ruleOf(check("lightning", COFFEE_60S, sats(250_000n)))).toBe("ok");
    expect(ruleOf(check("lightning", NONSENSE_60S, sats(250_000n)))).toBe("ok");
    expect(ruleOf(check("lightning", CAKE, sats(2_000_000n)))).toBe("ok");
    expect(ruleOf(check("lightning", ROUTED, sats(2_000_000n)))).toBe("ok");
    expect(ruleOf(check("lightning", COFFEE_BEANS, sats(2_500_000n)))).toBe("ok");
    expect(ruleOf(check("lightning", COFFEE_BEANS.toUpperCase(), sats(2_500_000n)))).toBe("ok");
  });

  test("a testnet invoice is accepted only where LIGHTNING_NETWORK is testnet", () => {
    expect(ruleOf(check("lightning", TESTNET_CAKE, { ...sats(2_000_000n), lightningNetwork: "testnet" }))).toBe("ok");
    expect(ruleOf(check("lightning", TESTNET_CAKE, sats(2_000_000n)))).toBe("network");
    expect(ruleOf(check("lightning", TESTNET_CAKE, { ...sats(2_000_000n), lightningNetwork: "regtest" }))).toBe("network");
    expect(ruleOf(check("lightning", CAKE, { ...sats(2_000_000n), lightningNetwork: "testnet" }))).toBe("network");
  });

  test("an amount other than the withdrawal's is refused, one satoshi either way", () => {
    expect(ruleOf(check("lightning", COFFEE_60S, sats(249_999n)))).toBe("amount-mismatch");
    expect(ruleOf(check("lightning", COFFEE_60S, sats(250_001n)))).toBe("amount-mismatch");
    // 967,878,534 msat is not a whole number of satoshis: no BTC amount can equal it.
    expect(ruleOf(check("lightning", PICO, { amountMinor: 967_878n, now: new Date(1572468703_000) }))).toBe("amount-mismatch");
    expect(ruleOf(check("lightning", PICO, { amountMinor: 967_879n, now: new Date(1572468703_000) }))).toBe("amount-mismatch");
  });

  test("expiry: the 60-second invoice is payable at 59 s and refused from 60 s; without `x`, 3600 s", () => {
    const at = (s: number) => new Date((1496314658 + s) * 1000);
    expect(ruleOf(check("lightning", COFFEE_60S, { amountMinor: 250_000n, now: at(59) }))).toBe("ok");
    expect(ruleOf(check("lightning", COFFEE_60S, { amountMinor: 250_000n, now: at(60) }))).toBe("expired");
    expect(ruleOf(check("lightning", CAKE, { amountMinor: 2_000_000n, now: at(3599) }))).toBe("ok");
    expect(ruleOf(check("lightning", CAKE, { amountMinor: 2_000_000n, now: at(3600) }))).toBe("expired");
    expect(ruleOf(check("lightning", CAKE, { amountMinor: 2_000_000n, now: NOW }))).toBe("expired");
  });

  // BOLT-11's "Examples of Invalid Invoices".
  test.each([
    ["a bad Bech32 checksum", "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrnt", "checksum"],
    ["no separator and no ln prefix", "pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny", "format"],
    ["mixed case", "LNBC2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny", "mixed-case"],
    ["a signature that recovers no key", "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaxtrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspk28uwq", "signature"],
    ["too short to hold a signature", "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6na6hlh", "length"],
    ["an invalid multiplier", "lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpujr6jxr9gq9pv6g46y7d20jfkegkg4gljz2ea2a3m9lmvvr95tq2s0kvu70u3axgelz3kyvtp2ywwt0y8hkx2869zq5dll9nelr83zzqqpgl2zg", "amount"],
    ["sub-millisatoshi precision", "lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu7hqtk93pkf7sw55rdv4k9z2vj050rxdr6za9ekfs3nlt5lr89jqpdmxsmlj9urqumg0h9wzpqecw7th56tdms40p2ny9q4ddvjsedzcplva53s", "amount"],
  ] as const)("%s is refused", (_name, invoice, rule) => {
    expect(ruleOf(check("lightning", invoice, sats(250_000n)))).toBe(rule);
  });

  test("anything that is not an invoice is refused", () => {
    expect(ruleOf(check("lightning", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"))).toBe("format");
    expect(ruleOf(check("lightning", `lightning:${COFFEE_60S}`, sats(250_000n)))).toBe("format");
    expect(ruleOf(check("lightning", `${COFFEE_60S} `, sats(250_000n)))).toBe("characters");
    expect(ruleOf(check("lightning", "alice@getalby.com"))).toBe("format");
  });

  describe("invoices built here (bolt11's encoder, BOLT-11's example key)", () => {
    const NETWORKS_OF = {
      bitcoin: { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] },
      testnet: { bech32: "tb", pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
      regtest: { bech32: "bcrt", pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
    } as const;
    const nowS = Math.floor(NOW.getTime() / 1000);

    function invoice({ network = "bitcoin", msat, timestamp = nowS - 10, expiry, payee }: { network?: LightningNetwork; msat?: bigint; timestamp?: number; expiry?: number; payee?: string }): string {
      const tags: { tagName: string; data: unknown }[] = [
        { tagName: "payment_hash", data: "0001020304050607080900010203040506070809000102030405060708090102" },
        { tagName: "payment_secret", data: "1111111111111111111111111111111111111111111111111111111111111111" },
        { tagName: "description", data: "coffer withdrawal" },
        { tagName: "feature_bits", data: { word_length: 4, var_onion_optin: { required: true }, payment_secret: { required: true } } },
      ];
      if (expiry !== undefined) tags.push({ tagName: "expire_time", data: expiry });
      if (payee !== undefined) tags.push({ tagName: "payee_node_key", data: payee });
      const encoded = bolt11.encode(
        { network: { ...NETWORKS_OF[network], validWitnessVersions: [0, 1] }, timestamp, ...(msat !== undefined ? { millisatoshis: msat.toString() } : {}), tags } as unknown as Parameters<typeof bolt11.encode>[0],
        false,
      );
      return bolt11.sign(encoded, PRIVATE_KEY).paymentRequest!;
    }

    test("for each configured network, its own invoices are accepted and the others' refused", () => {
      for (const mine of ["bitcoin", "testnet", "regtest"] as const) {
        for (const theirs of ["bitcoin", "testnet", "regtest"] as const) {
          const built = invoice({ network: theirs, msat: 150_000_000n });
          const rule = ruleOf(check("lightning", built, { amountMinor: 150_000n, lightningNetwork: mine }));
          expect({ mine, theirs, rule }).toEqual({ mine, theirs, rule: mine === theirs ? "ok" : "network" });
        }
      }
    });

    test("regtest invoices start lnbcrt, testnet lntb, bitcoin lnbc", () => {
      expect(invoice({ network: "regtest" }).startsWith("lnbcrt")).toBe(true);
      expect(invoice({ network: "testnet" }).startsWith("lntb")).toBe(true);
      expect(invoice({ network: "bitcoin" }).startsWith("lnbc1")).toBe(true);
    });

    test("the amount must equal the withdrawal's, in msat against sats, exactly", () => {
      expect(ruleOf(check("lightning", invoice({ msat: 1_000n }), { amountMinor: 1n }))).toBe("ok");
      expect(ruleOf(check("lightning", invoice({ msat: 1_001n }), { amountMinor: 1n }))).toBe("amount-mismatch");
      expect(ruleOf(check("lightning", invoice({ msat: 999n }), { amountMinor: 1n }))).toBe("amount-mismatch");
      expect(ruleOf(check("lightning", invoice({ msat: 2_100_000_000_000_000n }), { amountMinor: 2_100_000_000_000_000n / 1000n }))).toBe("ok");
      expect(ruleOf(check("lightning", invoice({}), { amountMinor: 42n }))).toBe("ok");
    });

    test("expiry counts from the invoice's timestamp on the clock given", () => {
      const at = (s: number) => new Date((nowS + s) * 1000);
      const built = invoice({ msat: 5_000n, timestamp: nowS, expiry: 600 });
      expect(ruleOf(check("lightning", built, { amountMinor: 5n, now: at(599) }))).toBe("ok");
      expect(ruleOf(check("lightning", built, { amountMinor: 5n, now: at(600) }))).toBe("expired");
      expect(ruleOf(check("lightning", invoice({ msat: 5_000n, timestamp: nowS - 3600 }), { amountMinor: 5n }))).toBe("expired");
      expect(ruleOf(check("lightning", invoice({ msat: 5_000n, timestamp: nowS - 3599 }), { amountMinor: 5n }))).toBe("ok");
    });

    test("an invoice naming a payee must be signed by it", () => {
      const signer = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad";
      const other = "029e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255";
      const signed = invoice({ msat: 5_000n, payee: signer });
      expect(ruleOf(check("lightning", signed, { amountMinor: 5n }))).toBe("ok");
      // The same invoice naming another payee, its checksum made valid again: the signature no longer fits.
      const { prefix, words } = bech32.decode(signed as `${string}1${string}`, false);
      for (let at = 7; at < words.length - 104; at += 3 + words[at + 1]! * 32 + words[at + 2]!) {
        if (words[at] === 19) words.splice(at + 3, 53, ...bech32.toWords(hex.decode(other)));
      }
      const forged = bech32.encode(prefix, words, false);
      expect(forged).not.toBe(signed);
      expect(ruleOf(check("lightning", forged, { amountMinor: 5n }))).toBe("signature");
    });
  });

  test("lightning carries only BTC", () => {
    expect(ruleOf(check("lightning", DONATION, { asset: "ETH", now: EXAMPLE_TIME }))).toBe("asset");
  });
});

describe("every network", () => {
  test("has a rule set, and refuses an empty string and a long one without throwing", () => {
    for (const network of NETWORKS) {
      for (const address of ["", "x".repeat(4096), "\u202Eevil", "😀💸", "' OR '1'='1"]) {
        const result = check(network, address);
        expect({ network, address: address.slice(0, 12), ok: result.ok }).toEqual({ network, address: address.slice(0, 12), ok: false });
      }
    }
  });

  test("is one the network table knows, and each network carries at least one asset", () => {
    expect(NETWORKS.length).toBe(14);
    for (const network of NETWORKS) expect(NETWORK_ASSETS[network].length).toBeGreaterThan(0);
  });
});

describe("redaction in logs", () => {
  test("a Lightning invoice is dropped whole and a TON address keeps only its ends", () => {
    const invoice = "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspfj9srp";
    expect(redact(`paying ${invoice} now`)).toBe("paying [lightning invoice] now");
    expect(redact(`paying ${invoice.toUpperCase()}`)).toBe("paying [lightning invoice]");
    expect(redact("to EQD-cvR0Nz6XAyRBvbhz-abTrRC6sI5tvHvvpeQraV9UAAD7 ok")).toBe("to EQD-cv…AAD7 ok");
    expect(redact("to UQD-cvR0Nz6XAyRBvbhz+abTrRC6sI5tvHvvpeQraV9UAAD7 ok")).not.toContain("abTrRC6sI5");
  });
});
