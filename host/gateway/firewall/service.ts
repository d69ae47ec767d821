// The firewall as a daemon service: compiles the config's firewall/nat sections and applies them at start.
// Stopping the daemon leaves the ruleset in force on purpose: a gateway must never fail open.
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import type { FeatureHost, Service } from '../../feature.js';
import { serialApply, type ConfigListener } from '../../daemon/apply.js';
import type { Logger } from '../../log.js';
import { compile } from './compile.js';
import { applyRuleset, firewallApplied } from './apply.js';

export function rulesetFile(stateDir: string): string { return path.join(stateDir, 'firewall', 'ruleset.nft'); }

/** What the ruleset is compiled from (a change elsewhere, e.g. a CARP skew, needs no re-apply). */
const sectionsOf = (c: Config) => JSON.stringify([c.firewall, c.nat, c.interfaces, c.carp.vips.map((v) => [v.interface, v.address]), !!c.dhcp]);

export class FirewallService implements Service {
  readonly name = 'firewall';
  private error: string | null = null;
  private onConfig: ConfigListener | null = null;
  private daemon: FeatureHost | null = null;

  async start(d: FeatureHost): Promise<void> {
    const log = d.log.child({ service: 'firewall' });
    try {
      await this.apply(d.config, log);
    } catch (e) {
      this.error = (e as Error).message;
      throw e; // a gateway without its ruleset must not take the VIPs: the daemon stops (Feature.start)
    }
    // A new config (config sync, reload): re-apply, one apply at a time in the order the changes came (two runs
    // at once would race on ruleset.nft.next and `nft -f`, and the older ruleset could land last). A refused
    // ruleset leaves the one in force and is reported.
    this.onConfig = serialApply({
      service: this.name, sections: ['firewall', 'nat'], log,
      wants: (next, prev) => sectionsOf(next) !== sectionsOf(prev),
      // Compiling a large ruleset takes tens of ms: not in the same turn of the event loop as the config change.
      apply: async (next) => { await new Promise<void>((r) => setImmediate(r)); await this.apply(next, log); },
      refused: 'new ruleset refused; the previous one stays in force',
      settled: (e) => { this.error = e ? e.message : null; },
    });
    d.on('config', this.onConfig);
    this.daemon = d;
  }

  private async apply(c: Config, log: Logger): Promise<void> {
    const compiled = compile(c);
    const info = await applyRuleset(compiled, rulesetFile(c.state_dir));
    log.info('ruleset applied', { lines: compiled.text.split('\n').length, apply_ms: info.applyMs, file: info.file });
  }

  stop(): void { if (this.onConfig) this.daemon?.off('config', this.onConfig); }

  status(): Record<string, unknown> {
    const a = firewallApplied();
    return { applied: a.applied, since: a.at, apply_ms: a.applyMs, file: a.file, ...(this.error ? { error: this.error } : {}) };
  }
}
