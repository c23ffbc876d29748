import { setDefaultTimeout } from "bun:test";

// Integration suites start servers and drive real Postgres: 5 s (Bun's default) is too tight on a
// 2-core CI machine, but every test still has a ceiling. bunfig.toml preloads this file.
setDefaultTimeout(60_000);
