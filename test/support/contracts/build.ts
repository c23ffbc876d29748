/**
 * Compiles TestUSDC.sol with solc-js (the `solc` dev dependency, pinned exactly in package.json so
 * every clone compiles the same bytes) and writes TestUSDC.json next to it: the ABI, the creation
 * bytecode and the compiler version. The tests deploy the committed artifact (loading solc costs
 * about 2 s); test/chain/erc20.test.ts recompiles the source and fails when the two differ, so the
 * source and the artifact cannot be changed one without the other. The bytecode ends with the
 * metadata hash, which covers the source text (comments included).
 *
 *   bun test/support/contracts/build.ts           rewrite TestUSDC.json
 *   bun test/support/contracts/build.ts --check   exit 1 when TestUSDC.json is stale
 */
import { join } from "node:path";

export const SOURCE_FILE = join(import.meta.dir, "TestUSDC.sol");
export const ARTIFACT_FILE = join(import.meta.dir, "TestUSDC.json");
/** The source's unit name in the compiler input (part of the metadata, so fixed, never a path of this machine). */
const UNIT = "TestUSDC.sol";
const CONTRACT = "TestUSDC";

/** What a compiled contract is to the tests: enough to deploy it and talk to it. */
export interface ContractArtifact {
  contractName: string;
  sourceName: string;
  compiler: { name: "solc-js"; version: string; evmVersion: string; optimizer: { enabled: boolean; runs: number } };
  abi: unknown[];
  /** Creation bytecode, 0x-prefixed (constructor arguments are appended at deployment). */
  bytecode: string;
}

/**
 * Cancun: what every chain Coffer pays on runs and what Anvil accepts; fixed so a newer solc
 * default (a newer hard fork's opcodes) never changes the bytes behind our back.
 */
const SETTINGS = { evmVersion: "cancun", optimizer: { enabled: true, runs: 200 } } as const;

interface SolcOutput {
  errors?: { severity: "error" | "warning" | "info"; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
}

/** Compile TestUSDC.sol now (about 2 s: solc-js is the compiler built to WebAssembly). Warnings are errors too. */
export async function compileTestUSDC(): Promise<ContractArtifact> {
  const { default: solc } = await import("solc");
  const input = {
    language: "Solidity",
    sources: { [UNIT]: { content: await Bun.file(SOURCE_FILE).text() } },
    settings: { ...SETTINGS, outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)) as string) as SolcOutput;
  const problems = (output.errors ?? []).filter((e) => e.severity !== "info");
  if (problems.length) throw new Error(`solc ${solc.version()} refused ${UNIT}:\n${problems.map((e) => e.formattedMessage).join("\n")}`);
  const compiled = output.contracts?.[UNIT]?.[CONTRACT];
  if (!compiled?.evm.bytecode.object) throw new Error(`solc produced no bytecode for ${CONTRACT}`);
  return {
    contractName: CONTRACT,
    sourceName: UNIT,
    compiler: { name: "solc-js", version: solc.version() as string, ...SETTINGS },
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
  };
}

/** The artifact as it is written to TestUSDC.json (stable key order, one trailing newline). */
export function serialize(artifact: ContractArtifact): string {
  return `${JSON.stringify(artifact, null, 2)}\n`;
}

if (import.meta.main) {
  const fresh = serialize(await compileTestUSDC());
  const file = Bun.file(ARTIFACT_FILE);
  const current = (await file.exists()) ? await file.text() : "";
  if (process.argv.includes("--check")) {
    if (current !== fresh) {
      console.error(`${ARTIFACT_FILE} is stale: run bun test/support/contracts/build.ts`);
      process.exit(1);
    }
    console.log(`${ARTIFACT_FILE} matches ${SOURCE_FILE}`);
  } else {
    await Bun.write(ARTIFACT_FILE, fresh);
    console.log(current === fresh ? `${ARTIFACT_FILE} unchanged` : `wrote ${ARTIFACT_FILE}`);
  }
}
