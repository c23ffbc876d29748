import type { MonitoringWorker } from "../monitoring/worker";
import type { RuleBook } from "../monitoring/rules";
import type { HealthChecks } from "./health";

/** What the admin operations need beyond the services every operation gets (built in src/node.ts). */
export interface AdminServices {
  rules: RuleBook;
  monitoring: MonitoringWorker;
  health: HealthChecks;
}
