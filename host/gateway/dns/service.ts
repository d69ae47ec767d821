// DNS as a daemon service: writes this node's unbound.conf, checks it with unbound-checkconf, runs unbound
// supervised in the node's namespace.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import type { Daemon } from '../../daemon/daemon.js';
import type { Service } from '../../daemon/service.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { Supervised } from '../supervise.js';
import { unboundConfig, unboundPaths } from './unbound.js';

export class DnsService implements Service {
  readonly name = 'dns';
  private proc: Supervised | null = null;

  start(d: Daemon): void {
    const log = d.log.child({ service: 'dns' });
    const p = unboundPaths(d.config.state_dir);
    mkdirSync(p.dir, { recursive: true, mode: 0o750 });
    writeFileAtomic(p.config, unboundConfig(d.config));
    try {
      execFileSync('unbound-checkconf', [p.config], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    } catch (e) {
      throw new Error(`unbound rejects the generated ${p.config}: ${String((e as any).stderr ?? (e as any).stdout ?? e).trim()} (check the dns section)`);
    }
    this.proc = new Supervised({
      name: 'unbound', cmd: 'unbound', args: ['-d', '-c', p.config], log, pidFile: p.pid,
      beforeStart: () => rmSync(p.unboundPid, { force: true }),
    });
    this.proc.start();
  }

  async stop(): Promise<void> { await this.proc?.stop(); }

  status(): Record<string, unknown> { return { unbound: this.proc?.status() ?? null }; }
}
