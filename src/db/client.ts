import postgres, { type Sql } from "postgres";

export type Db = Sql;

/** One pool per process. Options are explicit so nothing depends on the driver's defaults. */
export function connect(url: string, max = 20): Db {
  return postgres(url, {
    max,
    idle_timeout: 30,
    connect_timeout: 10,
    max_lifetime: 60 * 30,
    prepare: true,
    onnotice: () => {},
    // numeric stays a string: money is turned into bigint by our code, never into a JS number.
    types: {},
  });
}
