// DHCPv6 as a daemon service: writes this node's kea-dhcp6 config under state_dir/kea6, runs it supervised, and
// polls its control socket for `duogate status`. Runs beside the DHCPv4 Kea and follows the same rules
// (../dhcp/service.ts): held stopped while the sync link is down and the peer is the LAN MASTER; the primary's
// scope pushed to the standby when CARP sees the peer vanish.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { renameSync, rmSync } from 'node:fs';
import type { AlarmEvent, FeatureHost, Service, Transition } from '../../feature.js';
import { serialApply, type ConfigListener } from '../../daemon/apply.js';
import { Why } from '../../core/core.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { Supervised } from '../supervise.js';
import { KeaHold, type HoldChange } from '../dhcp/hold.js';
import { haAuthPassword, haListenerChecksAuth, keaCommand, keaEnv, keaVersion } from '../dhcp/kea.js';
import { ensureHaTls, pairSecret } from '../dhcp/hatls.js';
import { ensureKea6Dir, kea6Config, kea6Paths, kea6Status, type Kea6Status } from './kea6.js';
import type { Config } from '../../config/schema.js';

const POLL_MS = 1000;
const execFileP = promisify(execFile);
const coded = (e: Error, code: string) => Object.assign(e, { code });

export class Dhcp6Service implements Service {
  readonly name = 'dhcp6';
  private proc: Supervised | null = null;
  private poll: NodeJS.Timeout | null = null;
  private last: Kea6Status | null = null;
  private pollError: string | null = null;
  private daemon: FeatureHost | null = null;
  private onTransition: ((t: Transition) => void) | null = null;
  private onConfig: ConfigListener | null = null;
  private onAlarm: ((ev: AlarmEvent) => void) | null = null;
  private written = '';
  private hold = new KeaHold();
  private version: string | null = null;
  private tls = false;
  private haAuth = false;
  private tlsId: string | null = null;

  async start(d: FeatureHost): Promise<void> {
    const log = d.log.child({ service: 'dhcp6' });
    const p = kea6Paths(d.config.state_dir);
    ensureKea6Dir(p, d.config.state_dir);
    this.version = keaVersion();
    this.tls = !!pairSecret(d.config);
    this.haAuth = this.tls && haListenerChecksAuth(this.version);
    const config = (c: Config): string => {
      if (this.tls) this.tlsId = ensureHaTls(c).id;
      if (this.haAuth) writeFileAtomic(p.haPassword, haAuthPassword(c)!, 0o600);
      return JSON.stringify(kea6Config(c, c.state_dir, { tls: this.tls, basicAuth: this.haAuth }), null, 2);
    };
    this.written = config(d.config); // throws naming the field; the daemon then stops (Feature.start)
    writeFileAtomic(p.config, this.written);
    this.proc = new Supervised({
      name: 'kea-dhcp6', cmd: 'kea-dhcp6', args: ['-c', p.config], log, pidFile: p.pid, env: keaEnv(p),
      // A power cut leaves Kea's pid file behind; Kea refuses to start if that pid is now another process.
      beforeStart: () => { rmSync(`${p.dir}/kea-dhcp6.kea-dhcp6.pid`, { force: true }); rmSync(p.socket, { force: true }); },
      routine: /\bCOMMAND_RECEIVED\b/,
    });
    this.hold = KeaHold.from(d);
    if (this.hold.held) log.warn('sync link down while the peer is alive on the LAN: kea-dhcp6 does not start here (the LAN MASTER serves alone)');
    else this.proc.start();
    log.info(this.hold.held ? 'kea-dhcp6 configured (held)' : 'kea-dhcp6 started', { config: p.config, mode: 'hot-standby', this_server: d.config.node.role, kea_version: this.version, tls: this.tls });
    if (!this.tls) log.warn('kea-dhcp6 HA listener without authentication: no statesync.key, peer.key or configsync.password to derive the pair\'s TLS identity from');
    this.poll = setInterval(() => {
      kea6Status(p.socket).then((s) => { this.last = s; this.pollError = null; }, (e: Error) => { this.pollError = e.message; });
    }, POLL_MS);
    this.poll.unref();
    const reconcile = (change: HoldChange) => {
      if (!change || !this.proc) return;
      if (change === 'hold') { log.warn('sync link down while the peer is alive on the LAN: kea-dhcp6 stops here'); void this.proc.stop(); } else { log.info('kea-dhcp6 starts again'); this.proc.start(); }
    };
    this.onAlarm = (ev: AlarmEvent) => reconcile(this.hold.alarm(ev));
    d.on('alarm', this.onAlarm);
    this.onTransition = (t: Transition) => {
      reconcile(this.hold.transition(t));
      // As for kea-dhcp4: CARP sees a powered-off peer before Kea's heartbeat times out.
      if (t.interface === 'wan' || t.interface === 'sync' || t.to !== 'MASTER' || t.reason !== Why.MASTER_DOWN) return;
      kea6Status(p.socket).then(async (s) => {
        if (s.ha_state !== 'hot-standby' || s.scopes.includes('primary')) return;
        const r = await keaCommand(p.socket, 'ha-scopes', { scopes: ['primary'] });
        log.warn('peer silent and LAN VIP taken: kea-dhcp6 serves the primary scope now', { result: r?.result, text: r?.text });
      }).catch((e: Error) => log.error('ha-scopes failed; kea-dhcp6 takes over when its heartbeat times out', { err: e }));
    };
    d.on('transition', this.onTransition);
    this.onConfig = serialApply({
      service: this.name, sections: ['dhcp6'], log,
      wants: (next) => next.dhcp6 !== undefined,
      apply: (next) => this.reload(next, config, p, log),
      refused: 'new dhcp6 config refused; kea-dhcp6 keeps the previous one',
    });
    d.on('config', this.onConfig);
    this.daemon = d;
  }

  /** Check with `kea-dhcp6 -t`, put in place, config-reload (keeps the HA relationship and leases). */
  private async reload(next: Config, config: (c: Config) => string, p: ReturnType<typeof kea6Paths>, log: FeatureHost['log']): Promise<void> {
    let text: string;
    const tlsBefore = this.tlsId;
    try { text = config(next); } catch (e) { throw coded(e as Error, 'DG_ERR_DHCP6_CONFIG'); }
    if (text === this.written && this.tlsId === tlsBefore) return;
    const candidate = `${p.config}.next`;
    writeFileAtomic(candidate, text);
    const t = await execFileP('kea-dhcp6', ['-t', candidate], { timeout: 20_000, env: { ...process.env, ...keaEnv(p) } })
      .then(() => null, (e: any) => String(e.stdout ?? '') + String(e.stderr ?? e.message));
    if (t !== null) {
      const why = t.split('\n').filter((l) => /ERROR|rror encountered|FATAL/.test(l)).slice(0, 3).join(' | ') || t.trim().slice(-300);
      throw coded(new Error(`kea-dhcp6 -t refuses the generated ${candidate}: ${why} (check the dhcp6 section)`), 'DG_ERR_DHCP6_REFUSED');
    }
    const before = this.written;
    renameSync(candidate, p.config);
    this.written = text;
    let r: any;
    try { r = await keaCommand(p.socket, 'config-reload', undefined, 10_000); } catch (e) {
      log.warn('config-reload failed; kea-dhcp6 reads the new config when it (re)starts', { err: e });
      if (!this.hold.held) void this.proc?.restart();
      return;
    }
    if (r?.result === 0) { log.info('kea-dhcp6 reloaded its config', { text: r.text }); return; }
    writeFileAtomic(p.config, before);
    this.written = before;
    await keaCommand(p.socket, 'config-reload', undefined, 10_000).catch(() => { if (!this.hold.held) void this.proc?.restart(); });
    throw coded(new Error(`kea-dhcp6 refused config-reload: ${r?.text ?? JSON.stringify(r)} (check the dhcp6 section)`), 'DG_ERR_DHCP6_REFUSED');
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    if (this.onTransition) this.daemon?.off('transition', this.onTransition);
    if (this.onConfig) this.daemon?.off('config', this.onConfig);
    if (this.onAlarm) this.daemon?.off('alarm', this.onAlarm);
    await this.proc?.stop();
  }

  status(): Record<string, unknown> {
    return {
      ha_state: this.last?.ha_state ?? null, partner_state: this.last?.partner_state ?? null, scopes: this.last?.scopes ?? [],
      leases: this.last?.leases ?? null, kea: this.proc?.status() ?? null, kea_version: this.version,
      ha_auth: this.tls ? `mutual TLS${this.haAuth ? ' + basic' : ''}` : 'none (no shared secret; the ruleset admits only the peer)',
      ...(this.hold.held ? { held: 'sync link down: the peer is the LAN MASTER and serves DHCPv6 alone' } : {}),
      ...(this.pollError ? { poll_error: this.pollError } : {}),
    };
  }
}
