import { describe, expect, test } from "bun:test";
import { ASSET_SCALE, ASSETS, type Asset } from "../../lib/assets";
import { formatAmount, maxMinorFor, parseAmount } from "../../lib/money";

/** Decimal strings <-> bigint minor units must be exact for every asset, and refuse anything inexact. */
const HUGE = 2n ** 256n - 1n;

function minorOf(text: string, asset: Asset, max = HUGE): bigint {
  const parsed = parseAmount(text, asset, max);
  if (!parsed.ok) throw new Error(`expected ${JSON.stringify(text)} to parse as ${asset}: ${parsed.reason}`);
  return parsed.minor;
}

function refused(text: unknown, asset: Asset, max = HUGE): string {
  const parsed = parseAmount(text as string, asset, max);
  if (parsed.ok) throw new Error(`expected ${JSON.stringify(text)} to be refused for ${asset}, got ${parsed.minor}`);
  return parsed.reason;
}

test("the assets and their scales are the ones the issues name", () => {
  expect(ASSET_SCALE).toEqual({ USD: 2, EUR: 2, KES: 2, BTC: 8, ETH: 18, USDC: 6, SOL: 9, NEAR: 24, TON: 9 });
});

describe.each(ASSETS)("%s", (asset) => {
  const scale = ASSET_SCALE[asset];
  const unit = 10n ** BigInt(scale);

  test("a whole number is that many major units", () => {
    expect(minorOf("1", asset)).toBe(unit);
    expect(minorOf("42", asset)).toBe(42n * unit);
  });

  test("the smallest unit parses to 1 and formats back", () => {
    const smallest = `0.${"0".repeat(scale - 1)}1`;
    expect(minorOf(smallest, asset)).toBe(1n);
    expect(formatAmount(1n, asset)).toBe(smallest);
  });

  test("an amount with every decimal used round-trips exactly", () => {
    const digits = "1234567890".repeat(3).slice(0, scale);
    const text = `987654321.${digits}`;
    expect(minorOf(text, asset)).toBe(BigInt(`987654321${digits}`));
    expect(formatAmount(minorOf(text, asset), asset)).toBe(text);
  });

  test("fewer decimals than the scale are padded, and format shows exactly the scale", () => {
    expect(minorOf("2.5", asset)).toBe((25n * unit) / 10n);
    expect(formatAmount(minorOf("2.5", asset), asset)).toBe(`2.5${"0".repeat(scale - 1)}`);
    expect(formatAmount(0n, asset)).toBe(`0.${"0".repeat(scale)}`);
  });

  test('"0.1" + "0.2" is exactly "0.3"', () => {
    const sum = minorOf("0.1", asset) + minorOf("0.2", asset);
    expect(sum).toBe(minorOf("0.3", asset));
    expect(formatAmount(sum, asset)).toBe(`0.3${"0".repeat(scale - 1)}`);
  });

  test("one decimal more than the scale is refused, not rounded", () => {
    expect(refused(`0.${"0".repeat(scale)}1`, asset)).toContain(`at most ${scale} decimals`);
    expect(refused(`1.${"0".repeat(scale + 1)}`, asset)).toContain(`at most ${scale} decimals`);
  });

  test("zero in any spelling is refused", () => {
    for (const zero of ["0", "0.0", `0.${"0".repeat(scale)}`]) expect(refused(zero, asset)).toContain("greater than zero");
  });

  test("the configured maximum is accepted and one smallest unit more is refused", () => {
    const max = maxMinorFor(1_000_000_000n, asset);
    expect(max).toBe(1_000_000_000n * unit);
    expect(minorOf("1000000000", asset, max)).toBe(max);
    expect(refused(`1000000000.${"0".repeat(scale - 1)}1`, asset, max)).toContain("exceeds the maximum");
    expect(refused("99999999999999999999", asset, max)).toContain("exceeds the maximum");
  });

  test("a negative minor amount formats with its sign", () => {
    expect(formatAmount(-1n, asset)).toBe(`-0.${"0".repeat(scale - 1)}1`);
    expect(formatAmount(-unit * 3n, asset)).toBe(`-3.${"0".repeat(scale)}`);
  });
});

describe("strings that are not plain positive decimals are refused", () => {
  const hostile = [
    "-1", "-0.01", "+1", "1e3", "1E3", "1e-2", " 1", "1 ", "\t1", "1\n", "1.", ".5", "01", "00.5", "0x10", "0b1", "0o7",
    "1_000", "1,000", "1,5", "1.2.3", "", ".", "-", "NaN", "Infinity", "-Infinity", "abc", "１", "١", "1\u00002", "1%", "$1",
  ];
  for (const text of hostile) {
    test(`${JSON.stringify(text)} is refused for every asset`, () => {
      for (const asset of ASSETS) expect(refused(text, asset)).toBeString();
    });
  }

  test("numbers, null and objects are refused without throwing", () => {
    for (const value of [1, 0.1, 1n, null, undefined, {}, ["1"]]) expect(refused(value, "USD")).toBeString();
  });

  test("a string longer than 100 characters is refused before any parsing", () => {
    expect(refused("1".repeat(101), "ETH")).toContain("decimal string");
  });
});

describe("ETH at uint256 sizes", () => {
  test("2^256 - 1 wei parses and formats back exactly", () => {
    const text = formatAmount(HUGE, "ETH");
    expect(text).toBe("115792089237316195423570985008687907853269984665640564039457.584007913129639935");
    expect(minorOf(text, "ETH", HUGE)).toBe(HUGE);
  });

  test("one wei above a uint256-sized maximum is refused", () => {
    const justAbove = formatAmount(HUGE + 1n, "ETH");
    expect(refused(justAbove, "ETH", HUGE)).toContain("exceeds the maximum");
  });

  test("18 decimals add up without losing a wei", () => {
    const a = minorOf("123456789012345678901234567890.123456789012345678", "ETH");
    const b = minorOf("0.000000000000000001", "ETH");
    expect(formatAmount(a + b, "ETH")).toBe("123456789012345678901234567890.123456789012345679");
  });
});
