/**
 * Load with a ceiling: `next()` hands out the next piece of work (undefined: none left), and at
 * most `limit` pieces run at once. With a deadline no new piece starts after it, so a node that
 * hangs fails a suite in seconds instead of stalling it.
 */
export async function bounded(limit: number, next: () => Promise<void> | undefined, deadline_ms = Infinity): Promise<void> {
  const end = performance.now() + deadline_ms;
  const lane = async () => {
    for (let work = next(); work; work = performance.now() < end ? next() : undefined) await work;
  };
  await Promise.all(Array.from({ length: limit }, lane));
}

/** `work` over every item, at most `limit` at once, in order of the list. */
export function forEachBounded<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>, deadline_ms = Infinity): Promise<void> {
  let next = 0;
  return bounded(limit, () => {
    const i = next++;
    return i < items.length ? work(items[i]!, i) : undefined;
  }, deadline_ms);
}
