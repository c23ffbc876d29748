import { setDefaultTimeout } from "bun:test";

// Integration suites start servers and drive real Postgres: 5 s (Bun's default) is too tight on a
// 2-core CI machine, but every test still has a ceiling. bunfig.toml preloads this file.
setDefaultTimeout(60_000);

// Access lines for thousands of test requests would bury the failures; warnings and errors stay.
process.env.LOG_LEVEL ??= "warn";
