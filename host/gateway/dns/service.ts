// DNS as a daemon service: writes this node's unbound.conf, checks it with unbound-checkconf, runs unbound
// supervised in the node's namespace.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import type { Config } from '../../config/schema.js';
import type { FeatureHost, Service } from '../../feature.js';
import { serialApply, type ConfigListener } from '../../daemon/apply.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { Supervised } from '../supervise.js';
import { unboundConfig, unboundPaths } from './unbound.js';

const execFileP = promisify(execFile);

/**
 * Write unbound.conf after unbound-checkconf accepted it (a refused config never replaces the one in use).
 * The check runs as a child without blocking the event loop: CARP's timers keep running during a config apply.
 */
async function writeChecked(c: Config, file: string): Promise<string> {
  const text = unboundConfig(c);
  const next = `${file}.next`;
  writeFileAtomic(next, text);
  try {
    await execFileP('unbound-checkconf', [next], { timeout: 10_000 });
  } catch (e) {
    throw Object.assign(new Error(`unbound rejects the generated ${next}: ${String((e as any).stderr ?? (e as any).stdout ?? e).trim()} (check the dns section)`),
      { code: 'DG_ERR_DNS_REFUSED' });
  }
  renameSync(next, file);
  return text;
}

export class DnsService implements Service {
  readonly name = 'dns';
  private proc: Supervised | null = null;
  private onConfig: ConfigListener | null = null;
  private daemon: FeatureHost | null = null;
  private written = '';

  async start(d: FeatureHost): Promise<void> {
    const log = d.log.child({ service: 'dns' });
    const p = unboundPaths(d.config.state_dir);
    mkdirSync(p.dir, { recursive: true, mode: 0o750 });
    this.written = await writeChecked(d.config, p.config); // a throw stops the daemon (Feature.start)
    this.proc = new Supervised({
      name: 'unbound', cmd: 'unbound', args: ['-d', '-c', p.config], log, pidFile: p.pid,
      beforeStart: () => rmSync(p.unboundPid, { force: true }),
    });
    this.proc.start();
    // A new config: write, check, restart unbound (a second or so; the cache is rebuilt from the forwarders).
    this.onConfig = serialApply({
      service: this.name, sections: ['dns'], log,
      wants: (next) => next.dns !== undefined, // the section left: the daemon stops this feature (daemon/services.ts)
      apply: async (next) => {
        if (unboundConfig(next) === this.written) return;
        this.written = await writeChecked(next, p.config);
        await this.proc?.restart();
        log.info('unbound restarted with the new config');
      },
      refused: 'new dns config refused; unbound keeps the previous one',
    });
    d.on('config', this.onConfig);
    this.daemon = d;
  }

  async stop(): Promise<void> {
    if (this.onConfig) this.daemon?.off('config', this.onConfig);
    await this.proc?.stop();
  }

  status(): Record<string, unknown> { return { unbound: this.proc?.status() ?? null }; }
}
