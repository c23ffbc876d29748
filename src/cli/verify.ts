import { loadConfig } from "../config";
import { connect } from "../../lib/db";
import { startEmbeddedPostgres } from "../db/embedded";
import { checkLedger, type VerifyProgress } from "../ledger/verify";

/**
 * `bun run verify`: recompute every balance from the postings; exit 1 on any difference.
 * Progress and a summary go to stderr as it works (at most a line a second, and one per stage);
 * the report (mismatches, at most 1,000 listed, and the summary) goes to stdout as JSON.
 */
const PROGRESS_EVERY_MS = 1_000;

const config = loadConfig();
const url = config.DATABASE_URL ?? (await startEmbeddedPostgres(config.COFFER_HOME, () => {})).url;
// Queries run one at a time. Summing every journal of a large ledger is one long statement: no
// statement timeout here (a node's 30 s would end it), but the usual lock timeout.
const db = connect(url, 2, { statement_ms: 0, lock_ms: 5_000 });

const n = (x: number) => x.toLocaleString("en-US");
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const share = (c: { checked: number; total: number }) => `${n(c.checked)}/${n(c.total)}${c.total ? ` (${Math.floor((100 * c.checked) / c.total)}%)` : ""}`;

let lastStage = "";
let lastAt = 0;
function progressLine(p: VerifyProgress): void {
  const now = performance.now();
  // Every journals report (the start, then the sums), then at most one a second, and each new stage.
  if (p.stage === "done" || (p.stage !== "journals" && p.stage === lastStage && now - lastAt < PROGRESS_EVERY_MS)) return;
  const first = lastStage === "";
  lastStage = p.stage;
  lastAt = now;
  const line = first
    ? "summing every journal (one pass over the postings)…"
    : `${n(p.postings)} postings in ${n(p.journals)} journals · wallets ${share(p.wallets)} · chamas ${share(p.chamas)} · mismatches ${n(p.mismatches)}`;
  process.stderr.write(`verify: ${line} · ${seconds(p.elapsedMs)}\n`);
}

try {
  const report = await checkLedger(db, { onProgress: progressLine });
  const s = report.summary;
  const listed = report.mismatches.length < s.mismatches ? ` (${n(report.mismatches.length)} listed)` : "";
  process.stderr.write(
    `verify: ${n(s.wallets.checked)} wallets and ${n(s.chamas.checked)} chamas checked, ${n(s.postings)} postings in ${n(s.journals)} journals, ` +
      `${n(s.mismatches)} mismatches${listed} in ${seconds(s.elapsedMs)}: ${report.ok ? "the books balance" : "THE BOOKS DO NOT BALANCE"}\n`,
  );
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = report.ok ? 0 : 1;
} finally {
  await db.end({ timeout: 5 });
}
process.exit(process.exitCode ?? 1);
