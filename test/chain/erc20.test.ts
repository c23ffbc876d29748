import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AbiCoder, getAddress, id, Wallet, zeroPadValue } from "ethers";
import {
  balanceOfCall,
  decodeBalanceOf,
  decodeTransfer,
  decodeTransferLogs,
  encodeTransfer,
  readBalanceOf,
  TRANSFER_TOPIC,
  type ReceiptLog,
} from "../../src/integrations/evm/erc20";
import { anvilAccount, startAnvil, type Anvil } from "../support/anvil";
import { ARTIFACT_FILE, compileTestUSDC, serialize } from "../support/contracts/build";
import { DEFAULT_DEPLOYER, deployErc20, erc20BalanceOf, erc20Mint, erc20Read, erc20Transfer, sendTransaction, testUsdcInterface } from "../support/erc20";

/**
 * The ERC-20 the chain tests pay USDC with (TestUSDC.sol, compiled by solc-js, deployed to a real
 * Anvil), and the production helpers the payout worker encodes and reads token transfers with
 * (src/integrations/evm/erc20.ts).
 */
const ALICE = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const BOB = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const coder = AbiCoder.defaultAbiCoder();

describe("the committed artifact", () => {
  test("TestUSDC.json is what solc-js makes of TestUSDC.sol today (rebuild: bun test/support/contracts/build.ts)", async () => {
    const fresh = serialize(await compileTestUSDC());
    const committed = await Bun.file(ARTIFACT_FILE).text();
    expect(committed).toBe(fresh);
  }, 60_000);
});

describe("src/integrations/evm/erc20.ts (pure)", () => {
  test("transfer calldata: the selector of transfer(address,uint256), the address and the amount as words", () => {
    const data = encodeTransfer(ALICE.toLowerCase(), 1_500_000n);
    expect(data.slice(0, 10)).toBe(id("transfer(address,uint256)").slice(0, 10));
    expect(data.slice(0, 10)).toBe("0xa9059cbb");
    expect(data).toBe(`0xa9059cbb${zeroPadValue(ALICE, 32).slice(2).toLowerCase()}${(1_500_000n).toString(16).padStart(64, "0")}`);
    expect(decodeTransfer(data)).toEqual({ to: ALICE, amountMinor: 1_500_000n });
  });

  test("the largest uint256 is encoded exactly; anything a payout must never send is refused", () => {
    const max = (1n << 256n) - 1n;
    expect(decodeTransfer(encodeTransfer(BOB, max)).amountMinor).toBe(max);
    expect(() => encodeTransfer(BOB, max + 1n)).toThrow(RangeError);
    expect(() => encodeTransfer(BOB, 0n)).toThrow(RangeError);
    expect(() => encodeTransfer(BOB, -1n)).toThrow(RangeError);
    expect(() => encodeTransfer(BOB, 1 as unknown as bigint)).toThrow(RangeError);
    expect(() => encodeTransfer("0x0000000000000000000000000000000000000000", 1n)).toThrow(/zero address/);
    // EIP-55: a mixed-case address with one letter's case flipped is not an address.
    expect(() => encodeTransfer("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", 1n)).toThrow();
    expect(() => encodeTransfer("0x1234", 1n)).toThrow();
    expect(() => decodeTransfer(balanceOfCall(BOB))).toThrow();
  });

  test("balanceOf: calldata, and an answer decoded to minor units; an empty answer (no contract there) throws", () => {
    expect(balanceOfCall(BOB.toLowerCase())).toBe(`0x70a08231${zeroPadValue(BOB, 32).slice(2).toLowerCase()}`);
    expect(decodeBalanceOf(coder.encode(["uint256"], [123_456_789n]))).toBe(123_456_789n);
    expect(decodeBalanceOf(coder.encode(["uint256"], [0n]))).toBe(0n);
    expect(() => decodeBalanceOf("0x")).toThrow(/not one uint256/);
    expect(() => decodeBalanceOf(`${coder.encode(["uint256"], [1n])}00`)).toThrow(/not one uint256/);
  });

  describe("Transfer logs", () => {
    const token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const transfer = (from: string, to: string, amount: bigint, over: Partial<ReceiptLog> = {}): ReceiptLog => ({
      address: token.toLowerCase(),
      topics: [TRANSFER_TOPIC, zeroPadValue(from, 32), zeroPadValue(to, 32)],
      data: coder.encode(["uint256"], [amount]),
      ...over,
    });

    test("the token's Transfer events, in order, checksummed; other contracts', removed and ERC-721 logs are not", () => {
      expect(TRANSFER_TOPIC).toBe(id("Transfer(address,address,uint256)"));
      const other = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0";
      const logs: ReceiptLog[] = [
        transfer(ALICE, BOB, 5n, { logIndex: "0x3" }),
        transfer(ALICE, BOB, 7n, { address: other }),
        transfer(ALICE, BOB, 9n, { removed: true }),
        { address: token, topics: [TRANSFER_TOPIC, zeroPadValue(ALICE, 32), zeroPadValue(BOB, 32), zeroPadValue("0x01", 32)], data: "0x" },
        { address: token, topics: [id("Approval(address,address,uint256)"), zeroPadValue(ALICE, 32), zeroPadValue(BOB, 32)], data: coder.encode(["uint256"], [1n]) },
        transfer(BOB, ALICE, 11n),
      ];
      expect(decodeTransferLogs({ logs }, token.toLowerCase())).toEqual([
        { from: ALICE, to: BOB, amountMinor: 5n, logIndex: 3 },
        { from: BOB, to: ALICE, amountMinor: 11n },
      ]);
      expect(decodeTransferLogs({ logs: [] }, token)).toEqual([]);
    });

    test("a malformed Transfer from the token throws rather than reading a wrong amount", () => {
      expect(() => decodeTransferLogs({ logs: [transfer(ALICE, BOB, 1n, { data: "0x01" })] }, token)).toThrow(/not one uint256/);
      const dirty = `0x01${zeroPadValue(BOB, 32).slice(4)}`;
      expect(() => decodeTransferLogs({ logs: [{ ...transfer(ALICE, BOB, 1n), topics: [TRANSFER_TOPIC, zeroPadValue(ALICE, 32), dirty] }] }, token)).toThrow(/not an address/);
    });
  });
});

describe("TestUSDC on Anvil", () => {
  let anvil: Anvil;
  let token: string;
  const holder = anvilAccount(1);
  const stranger = Wallet.createRandom();

  beforeAll(async () => {
    anvil = await startAnvil({ chainId: 31337 });
    token = await deployErc20(anvil, { name: "Test USD Coin", symbol: "USDC", decimals: 6, mintTo: holder.address, mintAmount: 1_000_000_000n });
  }, 60_000);
  afterAll(async () => {
    await anvil?.stop();
  });

  test("deployed with its name, symbol, 6 decimals, the deployer as minter, and the minted supply at the holder", async () => {
    expect(token).toBe(getAddress(token));
    expect(await erc20Read<string>(anvil, token, "name")).toBe("Test USD Coin");
    expect(await erc20Read<string>(anvil, token, "symbol")).toBe("USDC");
    expect(await erc20Read<bigint>(anvil, token, "decimals")).toBe(6n);
    expect(await erc20Read<string>(anvil, token, "minter")).toBe(DEFAULT_DEPLOYER.address);
    expect(await erc20Read<bigint>(anvil, token, "totalSupply")).toBe(1_000_000_000n);
    expect(await erc20BalanceOf(anvil, token, holder.address)).toBe(1_000_000_000n);
    expect(await readBalanceOf({ call: anvil.rpc }, token, holder.address)).toBe(1_000_000_000n);
  });

  test("a transfer moves exactly its amount and emits one Transfer with from and to as topics", async () => {
    const to = stranger.address;
    const before = await erc20BalanceOf(anvil, token, holder.address);
    const receipt = await erc20Transfer(anvil, token, holder, to, 2_500_000n);
    expect(receipt.status).toBe("0x1");
    expect(await erc20BalanceOf(anvil, token, holder.address)).toBe(before - 2_500_000n);
    expect(await erc20BalanceOf(anvil, token, to)).toBe(2_500_000n);
    expect(receipt.logs).toHaveLength(1);
    const [log] = receipt.logs;
    expect(getAddress(log!.address)).toBe(token);
    expect(log!.topics).toEqual([id("Transfer(address,address,uint256)"), zeroPadValue(holder.address, 32).toLowerCase(), zeroPadValue(to, 32).toLowerCase()]);
    expect(BigInt(log!.data)).toBe(2_500_000n);
    expect(decodeTransferLogs(receipt, token)).toEqual([{ from: holder.address, to, amountMinor: 2_500_000n, logIndex: 0 }]);
    // The same receipt read for another token shows nothing moved.
    expect(decodeTransferLogs(receipt, DEFAULT_DEPLOYER.address)).toEqual([]);
  });

  test("a transfer over the balance is mined and reverts (status 0x0): no balance changes, no event", async () => {
    const poor = anvilAccount(2);
    const [mine, theirs] = [await erc20BalanceOf(anvil, token, poor.address), await erc20BalanceOf(anvil, token, BOB)];
    const receipt = await erc20Transfer(anvil, token, poor, BOB, mine + 1n, { gasLimit: 100_000n });
    expect(receipt.status).toBe("0x0");
    expect(receipt.logs).toEqual([]);
    expect(decodeTransferLogs(receipt, token)).toEqual([]);
    expect(await erc20BalanceOf(anvil, token, poor.address)).toBe(mine);
    expect(await erc20BalanceOf(anvil, token, BOB)).toBe(theirs);
    // Estimating it fails (the node runs it and sees the revert), so nothing is sent without a gas limit.
    await expect(erc20Transfer(anvil, token, poor, BOB, mine + 1n)).rejects.toThrow();
  });

  test("only the deployer mints; a mint is a Transfer from the zero address", async () => {
    const refused = await erc20Mint(anvil, token, holder.address, 1n, holder, { gasLimit: 100_000n });
    expect(refused.status).toBe("0x0");
    const supply = await erc20Read<bigint>(anvil, token, "totalSupply");
    const minted = await erc20Mint(anvil, token, BOB, 42n);
    expect(minted.status).toBe("0x1");
    expect(decodeTransferLogs(minted, token)).toEqual([{ from: "0x0000000000000000000000000000000000000000", to: BOB, amountMinor: 42n, logIndex: 0 }]);
    expect(await erc20Read<bigint>(anvil, token, "totalSupply")).toBe(supply + 42n);
  });

  test("approve and transferFrom: up to the allowance, which shrinks; one unit over reverts", async () => {
    const spender = anvilAccount(2);
    const approve = await sendTransaction(anvil, holder, { to: token, data: testUsdcInterface.encodeFunctionData("approve", [spender.address, 3_000n]) });
    expect(approve.status).toBe("0x1");
    expect(approve.logs[0]!.topics[0]).toBe(id("Approval(address,address,uint256)"));
    expect(await erc20Read<bigint>(anvil, token, "allowance", [holder.address, spender.address])).toBe(3_000n);
    const pull = (amount: bigint) =>
      sendTransaction(anvil, spender, { to: token, data: testUsdcInterface.encodeFunctionData("transferFrom", [holder.address, ALICE, amount]), gasLimit: 100_000n });
    const ok = await pull(2_000n);
    expect(ok.status).toBe("0x1");
    expect(decodeTransferLogs(ok, token)).toEqual([{ from: holder.address, to: ALICE, amountMinor: 2_000n, logIndex: 0 }]);
    expect(await erc20Read<bigint>(anvil, token, "allowance", [holder.address, spender.address])).toBe(1_000n);
    expect((await pull(1_001n)).status).toBe("0x0");
    expect((await pull(1_000n)).status).toBe("0x1");
    expect(await erc20BalanceOf(anvil, token, ALICE)).toBe(3_000n);
  });

  test("on an Anvil that does not mine by itself, the helpers mine their own transaction", async () => {
    const quiet = await startAnvil({ chainId: 31337, automine: false });
    try {
      const other = await deployErc20(quiet, { mintTo: holder.address, mintAmount: 10n });
      expect(await erc20BalanceOf(quiet, other, holder.address)).toBe(10n);
      expect((await erc20Transfer(quiet, other, holder, BOB, 4n)).status).toBe("0x1");
      expect(await erc20BalanceOf(quiet, other, BOB)).toBe(4n);
    } finally {
      await quiet.stop();
    }
  }, 30_000);
});
