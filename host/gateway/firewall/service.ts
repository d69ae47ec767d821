// The firewall as a daemon service: compiles the config's firewall/nat sections and applies them at start.
// Stopping the daemon leaves the ruleset in force on purpose: a gateway must never fail open.
import path from 'node:path';
import type { Daemon } from '../../daemon/daemon.js';
import type { Service } from '../../daemon/service.js';
import type { ControlServer } from '../../control/server.js';
import { compile } from './compile.js';
import { applyRuleset, firewallApplied, listRuleset } from './apply.js';
import { ruleCounters } from './show.js';

export function rulesetFile(stateDir: string): string { return path.join(stateDir, 'firewall', 'ruleset.nft'); }

export class FirewallService implements Service {
  readonly name = 'firewall';
  private error: string | null = null;

  constructor(control?: ControlServer) {
    control?.handle('firewall.show', async (req) => (req.json ? ruleCounters() : listRuleset()));
  }

  async start(d: Daemon): Promise<void> {
    const log = d.log.child({ service: 'firewall' });
    const c = compile(d.config);
    try {
      const info = await applyRuleset(c, rulesetFile(d.config.state_dir));
      log.info('ruleset applied', { lines: c.text.split('\n').length, apply_ms: info.applyMs, file: info.file });
    } catch (e) {
      this.error = (e as Error).message;
      throw e; // a gateway without its ruleset must not take the VIPs
    }
  }

  stop(): void {}

  status(): Record<string, unknown> {
    const a = firewallApplied();
    return { applied: a.applied, since: a.at, apply_ms: a.applyMs, file: a.file, ...(this.error ? { error: this.error } : {}) };
  }
}
