import { loadConfig } from "../config";
import { connect } from "../../lib/db";
import { startEmbeddedPostgres } from "../db/embedded";
import { verifyLedger } from "../ledger/verify";

/** `bun run verify`: recompute every balance from the postings; exit 1 on any difference. */
const config = loadConfig();
const url = config.DATABASE_URL ?? (await startEmbeddedPostgres(config.COFFER_HOME, () => {})).url;
const db = connect(url, 4);
const report = await verifyLedger(db);
console.log(JSON.stringify(report, null, 2));
await db.end({ timeout: 5 });
process.exit(report.ok ? 0 : 1);
