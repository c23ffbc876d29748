import type { Cluster } from "../../actors/cluster";
import type { ActorHost } from "../../actors/host";
import type { ChamaService } from "../api/chama-service";
import type { DepositService } from "../api/deposit-service";
import type { WalletService } from "../api/wallet-service";
import type { Db } from "../../lib/db";
import type { Config } from "../config";
import type { StripeRail } from "../integrations/stripe/rail";
import type { ApiKeys } from "../security/api-keys";
import type { Vault } from "../security/encryption";
import type { RateLimiter } from "../security/rate-limit";
import type { Authenticator } from "../security/authenticator";
import type { AdminServices } from "../admin/services";
import type { CofferMetrics } from "../monitoring/metrics";
import type { WebhookEndpoints } from "../webhooks/endpoints";
import type { ChainOperatorDeps } from "../integrations/chain/operator";

/** What route handlers need; built once in src/node.ts. */
export interface HttpDeps {
  db: Db;
  ops: WalletService;
  chamas: ChamaService;
  deposits: DepositService;
  host: ActorHost;
  /** Present in cluster mode (NATS_URL set). */
  cluster?: Cluster | undefined;
  authenticator: Authenticator;
  apiKeys: ApiKeys;
  vault: Vault;
  /** Shared rate limiter; undefined when RATE_LIMITS=off. */
  limiter: RateLimiter | undefined;
  config: Config;
  /** Present when Stripe is configured: the webhook's intake. */
  stripe?: StripeRail | undefined;
  /** Origins allowed to call from a browser; empty: CORS off. */
  corsOrigins: string[];
  /** The node's Prometheus metrics (src/monitoring/metrics.ts); absent: nothing is counted. */
  metrics?: CofferMetrics | undefined;
  /** Webhooks out: apps' endpoints and their delivery logs (absent: those routes answer 503). */
  webhooks?: WebhookEndpoints | undefined;
  /** Monitoring's rules and worker and the health checks (the admin routes). */
  admin?: AdminServices | undefined;
  /** The chain payout pipeline's networks and workers (the operator routes). */
  chain?: ChainOperatorDeps | undefined;
}
