// A live config change reaches the services through the daemon's 'config' event, and each applies its part on its
// own time (nft, unbound-checkconf, Kea's config-reload). Whoever made the change and must answer for it (config
// sync on the secondary) passes a tracker along: each service registers the promise of its apply and the
// sections it covers, and the tracker says, once they settle, which sections the real tools refused and why.
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';

/** A section a service could not put in force; the one before stays. */
export interface SectionRejection {
  /** The config sections the failed apply covers (the firewall covers firewall and nat). */
  sections: string[];
  service: string;
  /** Stable: the error's own DG_ERR_* code, DG_ERR_APPLY_FAILED for any other error, DG_ERR_APPLY_TIMEOUT. */
  code: string;
  reason: string;
}

export class ApplyTracker {
  private readonly jobs: { service: string; sections: string[]; done: Promise<unknown> }[] = [];
  private readonly many: { done: Promise<SectionRejection[]>; sections: string[] }[] = [];

  /** A service's apply of this change. The promise should reject with an error naming what the tool refused. */
  track(service: string, sections: string[], done: Promise<unknown>): void {
    // Marked handled here: the tracker reads the outcome in settle(); no unhandled rejection in between.
    done.catch(() => {});
    this.jobs.push({ service, sections, done });
  }

  /**
   * Work whose outcome is a list of failed sections (the daemon starting the features a change asks for).
   * `sections`: what it covers, reported if it does not finish in time, so that config sync puts them back.
   */
  trackMany(done: Promise<SectionRejection[]>, sections: string[] = []): void {
    done.catch(() => {});
    this.many.push({ done, sections });
  }

  get size(): number { return this.jobs.length + this.many.length; }

  /** Wait for every tracked apply (at most timeoutMs each, counted from now) and list the failed ones. */
  async settle(timeoutMs: number): Promise<SectionRejection[]> {
    const out: SectionRejection[] = [];
    const timeoutError = (what: string) => Object.assign(new Error(what), { code: 'DG_ERR_APPLY_TIMEOUT' });
    await Promise.all(this.jobs.map(async (j) => {
      try {
        await withTimeout(j.done, timeoutMs, () => { throw timeoutError(`${j.service} did not finish applying within ${timeoutMs} ms; it may still apply the new config`); });
      } catch (e) {
        const err = e as Error & { code?: unknown };
        const code = typeof err.code === 'string' && err.code.startsWith('DG_ERR_') ? err.code : 'DG_ERR_APPLY_FAILED';
        out.push({ sections: j.sections, service: j.service, code, reason: err?.message ?? String(e) });
      }
    }));
    await Promise.all(this.many.map(async (m) => {
      try {
        out.push(...await withTimeout(m.done, timeoutMs, () => [{ sections: m.sections, service: 'features', code: 'DG_ERR_APPLY_TIMEOUT', reason: `starting the features the change asks for took over ${timeoutMs} ms` }]));
      } catch (e) {
        out.push({ sections: m.sections, service: 'features', code: 'DG_ERR_APPLY_FAILED', reason: (e as Error)?.message ?? String(e) });
      }
    }));
    return out;
  }
}

/** `p`, or what `onTimeout` returns (or throws) if `p` has not settled within `ms`. The timer never outlives it. */
async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((res, rej) => { timer = setTimeout(() => { try { res(onTimeout()); } catch (e) { rej(e); } }, ms); });
  try { return await Promise.race([p, late]); } finally { clearTimeout(timer); }
}

/** A service's 'config' listener (host/feature.ts HostEvents.config). */
export type ConfigListener = (next: Config, prev: Config, tracker?: ApplyTracker) => void;

export interface SerialApply {
  /** The service's name, as the tracker reports it. */
  service: string;
  /** The config sections its apply covers (what config sync keeps at its previous value when it fails). */
  sections: string[];
  log: Logger;
  /** Whether this change concerns the service at all; when false nothing is queued or tracked. */
  wants(next: Config, prev: Config): boolean;
  /** Put `next` in force; reject with an error naming what the tool refused. */
  apply(next: Config): Promise<void>;
  /** Logged (with the error) when an apply is refused. */
  refused: string;
  /** Told the outcome of every apply (e.g. to keep the error for status). */
  settled?(err: Error | null): void;
}

/**
 * The 'config' listener of a service whose apply runs an outside tool (nft, unbound-checkconf, Kea): applies run
 * one after another in the order the changes came, so an older config never lands after a newer one (two quick
 * `config apply`s, or config sync putting the previous config back while a slow apply still runs). A refused
 * apply is logged and does not stop the next; the tracker, if any, gets this apply's outcome.
 */
export function serialApply(o: SerialApply): ConfigListener {
  let chain: Promise<void> = Promise.resolve();
  return (next, prev, tracker) => {
    if (!o.wants(next, prev)) return;
    const step = chain.then(() => o.apply(next));
    step.then(() => o.settled?.(null), (e: Error) => {
      o.settled?.(e);
      o.log.error(o.refused, { err: e });
    });
    chain = step.catch(() => {});
    tracker?.track(o.service, o.sections, step);
  };
}
