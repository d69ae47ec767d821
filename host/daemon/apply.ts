// A live config change reaches the services through the daemon's 'config' event, and each applies its part on its
// own time (nft, unbound-checkconf, Kea's config-reload). Whoever made the change and must answer for it (config
// sync on the secondary) passes a tracker along: each service registers the promise of its apply and the
// sections it covers, and the tracker says, once they settle, which sections the real tools refused and why.

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
  private readonly many: Promise<SectionRejection[]>[] = [];

  /** A service's apply of this change. The promise should reject with an error naming what the tool refused. */
  track(service: string, sections: string[], done: Promise<unknown>): void {
    // Marked handled here: the tracker reads the outcome in settle(); no unhandled rejection in between.
    done.catch(() => {});
    this.jobs.push({ service, sections, done });
  }

  /** Work whose outcome is a list of failed sections (the daemon starting the features a change asks for). */
  trackMany(done: Promise<SectionRejection[]>): void {
    done.catch(() => {});
    this.many.push(done);
  }

  get size(): number { return this.jobs.length + this.many.length; }

  /** Wait for every tracked apply (at most timeoutMs each, counted from now) and list the failed ones. */
  async settle(timeoutMs: number): Promise<SectionRejection[]> {
    const out: SectionRejection[] = [];
    await Promise.all(this.jobs.map(async (j) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(Object.assign(new Error(`${j.service} did not finish applying within ${timeoutMs} ms; it may still apply the new config`), { code: 'DG_ERR_APPLY_TIMEOUT' })), timeoutMs);
      });
      try { await Promise.race([j.done, timeout]); } catch (e) {
        const err = e as Error & { code?: unknown };
        const code = typeof err.code === 'string' && err.code.startsWith('DG_ERR_') ? err.code : 'DG_ERR_APPLY_FAILED';
        out.push({ sections: j.sections, service: j.service, code, reason: err?.message ?? String(e) });
      } finally { clearTimeout(timer); }
    }));
    await Promise.all(this.many.map(async (m) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<SectionRejection[]>((res) => {
        timer = setTimeout(() => res([{ sections: [], service: 'features', code: 'DG_ERR_APPLY_TIMEOUT', reason: `starting the features the change asks for took over ${timeoutMs} ms` }]), timeoutMs);
      });
      try { out.push(...await Promise.race([m, timeout])); } catch (e) {
        out.push({ sections: [], service: 'features', code: 'DG_ERR_APPLY_FAILED', reason: (e as Error)?.message ?? String(e) });
      } finally { clearTimeout(timer); }
    }));
    return out;
  }
}
