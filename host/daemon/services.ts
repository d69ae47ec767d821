// The features the daemon runs, kept in step with the running config: at start every feature the config asks
// for, in the list's order (host/features.ts); after a live change (config sync, `duogate config apply`) a
// feature whose section arrived is started and one whose section left is stopped, so a secondary configured
// with only its own sections runs whatever the primary syncs to it. A changed synced section is the running
// feature's own business (its 'config' listener reloads it); a changed node-local one is read at start only, so
// the feature is restarted (Feature.restartOnChange) or the change is logged and shown as needing a restart.
import type { Feature, FeatureHost, Service } from '../feature.js';
import type { Config } from '../config/schema.js';
import { features as allFeatures } from '../features.js';
import type { SectionRejection } from './apply.js';

/** Thrown by startAll: which feature failed to start, and why. */
export class FeatureStartError extends Error {
  readonly code = 'DG_ERR_FEATURE_START';
  constructor(readonly feature: string, override readonly cause: unknown) {
    super(`${feature}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'FeatureStartError';
  }
}

export class FeatureRunner {
  private readonly running = new Map<string, Service>();
  /** Features a live change asked for that could not start: shown in status until they do. */
  private readonly failed = new Map<string, string>();
  /** Starts and stops one at a time, in the order the changes came. */
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Each running feature's node-local sections as it started with them (JSON), to see a live change. */
  private readonly startedWith = new Map<string, string>();
  /** Running features whose node-local sections changed and wait for a daemon restart: the changed value (JSON) and sections. */
  private readonly restartNeeded = new Map<string, { value: string; sections: string[] }>();

  constructor(private readonly host: FeatureHost, private readonly list: readonly Feature[] = allFeatures) {
    host.on('config', (next, _prev, tracker) => {
      // The features this change starts (as far as known now): what config sync puts back if they are too slow.
      const starting = this.list.filter((f) => f.wanted(next) && !this.running.has(f.name)).flatMap((f) => Object.keys(f.sections));
      const step = this.chain.then(() => this.follow());
      this.chain = step.then(() => {}, () => {});
      // A feature a synced section asks for that cannot start: config sync keeps that section's previous value.
      tracker?.trackMany(step, starting);
    });
  }

  /** Running services, in start order. */
  services(): Service[] { return this.list.flatMap((f) => this.running.get(f.name) ?? []); }

  /** Before the daemon starts anything: the config amended by each feature that has a say (Feature.bootConfig). */
  async bootConfig(c: Config): Promise<Config> {
    for (const f of this.list) if (f.bootConfig) c = await f.bootConfig(c, this.host.log);
    return c;
  }

  /** At daemon start: every feature the config asks for. The first that throws ends it (FeatureStartError). */
  startAll(): Promise<void> {
    const run = this.chain.then(async () => {
      for (const f of this.list) {
        if (this.stopped || !f.wanted(this.host.config)) continue;
        try { await this.startOne(f); } catch (e) { throw new FeatureStartError(f.name, e); }
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }

  /** Resolves when every start and stop asked for so far is done (tests, shutdown). */
  settled(): Promise<void> { return this.chain; }

  private async startOne(f: Feature): Promise<void> {
    const local = localOf(f, this.host.config);
    const s = await f.start(this.host);
    if (!s) return;
    // The daemon stopped while this one was starting: it must not run on alone.
    if (this.stopped) { await s.stop(true); return; }
    this.running.set(f.name, s);
    this.startedWith.set(f.name, local);
    this.restartNeeded.delete(f.name);
  }

  private async stopOne(f: Feature, s: Service, why: string): Promise<void> {
    this.running.delete(f.name);
    this.startedWith.delete(f.name);
    this.restartNeeded.delete(f.name);
    try { await s.stop(true); } catch (e) { this.host.log.error('service stop failed', { service: f.name, err: e }); }
    this.host.log.info(`feature stopped: ${why}`, { feature: f.name });
  }

  /** A running feature whose node-local sections changed: restarted when it allows it, else marked (logged once per change). */
  private async followLocal(f: Feature, s: Service, c: Config): Promise<boolean> {
    const now = localOf(f, c);
    if (now === this.startedWith.get(f.name)) { this.restartNeeded.delete(f.name); return false; }
    if (f.restartOnChange) { await this.stopOne(f, s, 'its node-local section changed; it starts again with it'); return true; }
    if (this.restartNeeded.get(f.name)?.value === now) return false;
    const was = JSON.parse(this.startedWith.get(f.name) ?? '[]') as unknown[];
    const sections = localSections(f).filter((k, i) => JSON.stringify((c as Record<string, unknown>)[k] ?? null) !== JSON.stringify(was[i] ?? null));
    this.restartNeeded.set(f.name, { value: now, sections });
    this.host.log.warn('config change needs a restart to take effect', { feature: f.name, section: sections.join(', ') });
    return false;
  }

  /** Stop and start features to match the config; returns the ones that could not start. */
  private async follow(): Promise<SectionRejection[]> {
    const refused: SectionRejection[] = [];
    if (this.stopped) return refused;
    const c = this.host.config;
    const restarting = new Set<string>();
    for (const f of [...this.list].reverse()) {
      const s = this.running.get(f.name);
      if (!s) continue;
      if (!f.wanted(c)) await this.stopOne(f, s, 'its section left the config');
      else if (await this.followLocal(f, s, c)) restarting.add(f.name);
    }
    for (const f of this.list) {
      if (!f.wanted(c)) { this.failed.delete(f.name); continue; }
      if (this.running.has(f.name) || this.stopped) continue;
      try {
        await this.startOne(f);
        this.failed.delete(f.name);
        this.host.log.info(restarting.has(f.name) ? 'feature started again with its changed section' : 'feature started: its section arrived in the config', { feature: f.name });
      } catch (e) {
        // The node keeps running what it has; the next config change tries again.
        this.failed.set(f.name, (e as Error)?.message ?? String(e));
        refused.push({ sections: Object.keys(f.sections), service: f.name, code: 'DG_ERR_FEATURE_START', reason: (e as Error)?.message ?? String(e) });
        this.host.log.error('feature could not start with the new config; the node runs without it until the next config change', { feature: f.name, err: e });
      }
    }
    return refused;
  }

  /** Each feature's status section, in start order: a running one's own, one that failed to start its error. */
  status(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of this.list) {
      const s = this.running.get(f.name);
      const pending = this.restartNeeded.get(f.name);
      if (s) out[s.name] = pending ? { ...s.status(), restart_needed: `${pending.sections.join(', ')} changed; it takes effect when the daemon restarts` } : s.status();
      else if (this.failed.has(f.name)) out[f.name] = { running: false, error: this.failed.get(f.name) };
    }
    return out;
  }

  /** Stop every running feature, the last started first. */
  async stopAll(graceful: boolean): Promise<void> {
    this.stopped = true;
    for (const s of this.services().reverse()) {
      try { await s.stop(graceful); } catch (e) { this.host.log.error('service stop failed', { service: s.name, err: e }); }
    }
    this.running.clear();
    this.startedWith.clear();
    this.restartNeeded.clear();
  }
}

/** A feature's node-local sections: the ones config sync does not carry. */
const localSections = (f: Feature): string[] => Object.keys(f.sections).filter((k) => !(f.synced ?? []).includes(k));
const localOf = (f: Feature, c: Config): string => JSON.stringify(localSections(f).map((k) => (c as Record<string, unknown>)[k] ?? null));
