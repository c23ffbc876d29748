import { afterAll, setDefaultTimeout } from "bun:test";
import { describeBudget, serverConnections } from "./budget";
import { DEFAULT_URL } from "./db";
import { removeTestDirs } from "./temp";

// Integration suites start servers and drive real Postgres: 5 s (Bun's default) is too tight on a
// 2-core CI machine, but every test still has a ceiling. bunfig.toml preloads this file. Bun 1.4.5
// applies this to the first test file only, so the suite's command carries `--timeout 60000` too
// (README, package.json, .ci/run); this covers a single file run alone.
setDefaultTimeout(60_000);

// Access lines for thousands of test requests would bury the failures; warnings and errors stay.
process.env.LOG_LEVEL ??= "warn";

// The folders the tests made for keys and stores go when the last test is done (test/support/temp.ts).
afterAll(removeTestDirs);

// The suite shares its Postgres: say what it will take of it (test/support/budget.ts), and stop
// before the first test when the server cannot give that much.
const url = process.env.DATABASE_URL ?? DEFAULT_URL;
const server = await serverConnections(url);
const budget = describeBudget(server);
console.log(budget.line);
if (!budget.enough) {
  console.error(
    `the test suite needs ${budget.total} connections to the Postgres at ${new URL(url).host} and only ${server!.free} are free ` +
      `(max_connections ${server!.max}, ${server!.inUse} in use, ${server!.reserved} reserved): close what holds them, raise max_connections, ` +
      `or point DATABASE_URL at a Postgres of the suite's own`,
  );
  process.exit(1);
}
