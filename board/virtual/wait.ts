// The one poller of the virtual board and its tests. Every loop is bounded twice, in time and in count, so a
// predicate that returns at once (or a clock that jumps) cannot spin a test forever.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** At most this many rounds, whatever `ms` and `step` say. */
const MAX_ROUNDS = 100_000;

/**
 * Call `fn` every `step` ms until it returns a truthy value (returned) or `ms` pass (null). Errors from `fn`
 * propagate: a predicate that may fail while something starts up should catch, or use waitFor.
 */
export async function poll<T>(fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms: number, step = 50): Promise<T | null> {
  const end = Date.now() + ms;
  for (let i = 0; i < MAX_ROUNDS; i++) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() >= end) return null;
    await sleep(step);
  }
  return null;
}

/**
 * Like poll, but a timeout throws, naming `what`, the last error `fn` threw (errors count as "not yet": a
 * daemon that does not answer yet refuses the connection) and what `detail` says (the last status, a log tail).
 */
export async function waitFor<T>(
  what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms: number, step = 100,
  detail?: () => string,
): Promise<T> {
  let last: unknown = null;
  const v = await poll(async () => { try { return await fn(); } catch (e) { last = e; return null; } }, ms, step);
  if (v) return v;
  const why = last ? ` (last error: ${(last as Error).message ?? last})` : '';
  throw new Error(`timed out after ${ms} ms waiting for ${what}${why}${detail ? `\n${detail()}` : ''}`);
}
