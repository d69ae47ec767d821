// One Kea server (kea-dhcp4 or kea-dhcp6) in HA hot-standby as a daemon service: its config written under
// state_dir, the process supervised, its control socket polled for `duogate status`, and the pair's rules that
// both DHCP features follow: held stopped while the sync link is down and the peer is the LAN MASTER (hold.ts);
// the primary's scope pushed to the standby when CARP sees the peer vanish; a new config checked with `-t`,
// put in place and reloaded (config-reload keeps the HA relationship and the leases), the previous one kept when
// Kea refuses it. The DHCPv4 (./service.ts) and DHCPv6 (../dhcp6/service.ts) features differ only in the flavour.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { renameSync, rmSync } from 'node:fs';
import type { AlarmEvent, FeatureHost, Service, Transition } from '../../feature.js';
import { serialApply, type ConfigListener } from '../../daemon/apply.js';
import { Why } from '../../core/core.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { Supervised } from '../supervise.js';
import { KeaHold, type HoldChange } from './hold.js';
import { haAuthPassword, haListenerChecksAuth, keaCommand, keaEnv, keaVersion } from './kea.js';
import { ensureHaTls, pairSecret } from './hatls.js';
import type { Config } from '../../config/schema.js';

const POLL_MS = 1000;
const execFileP = promisify(execFile);
const coded = (e: Error, code: string) => Object.assign(e, { code });

/** Where a Kea server keeps its files (keaPaths, kea6Paths). */
export interface KeaFiles { dir: string; config: string; socket: string; pid: string; haPassword: string }
/** What the service shows of Kea's state. */
export interface KeaPolled { ha_state: string | null; partner_state: string | null; scopes: string[]; leases: number | null }

/** What makes a Kea service the DHCPv4 or the DHCPv6 one. */
export interface KeaFlavour<S extends KeaPolled> {
  /** The service's name, its config section's too. */
  name: 'dhcp' | 'dhcp6';
  binary: 'kea-dhcp4' | 'kea-dhcp6';
  /** How logs name the server: in what happens to it (Kea stops here), and as the subject of its own events
   * (kea started, kea reloaded its config), which operators and tests search for. */
  label: string;
  subject: string;
  /** Error codes: DG_ERR_<tag>_CONFIG, DG_ERR_<tag>_REFUSED. */
  tag: 'DHCP' | 'DHCP6';
  files(stateDir: string): KeaFiles;
  /** Make the directory (and whatever else the server needs beside it). */
  prepare(p: KeaFiles, stateDir: string): void;
  /** The server's config as JSON; throws naming the field. */
  config(c: Config, tls: { tls: boolean; basicAuth: boolean }): object;
  poll(socket: string, c: Config): Promise<S>;
  /** Status fields of its own beside the common ones. */
  statusExtra?(last: S | null): Record<string, unknown>;
}

export class KeaService<S extends KeaPolled> implements Service {
  readonly name: string;
  private proc: Supervised | null = null;
  private timer: NodeJS.Timeout | null = null;
  private last: S | null = null;
  private pollError: string | null = null;
  private daemon: FeatureHost | null = null;
  private onTransition: ((t: Transition) => void) | null = null;
  private onConfig: ConfigListener | null = null;
  private onAlarm: ((ev: AlarmEvent) => void) | null = null;
  private written = '';
  /** Whether Kea is held stopped (sync link down, the peer the LAN MASTER): hold.ts. */
  private hold = new KeaHold();
  private version: string | null = null;
  private haAuth = false;
  private tls = false;
  private tlsSource: string | null = null;
  private tlsId: string | null = null;

  constructor(private readonly f: KeaFlavour<S>) { this.name = f.name; }

  private authText(): string {
    if (!this.tls) return 'none (no shared secret; the ruleset admits only the peer)';
    return `mutual TLS (pair identity from ${this.tlsSource})${this.haAuth ? ' + basic' : `; basic auth not checked by Kea ${this.version ?? '?'}`}`;
  }

  async start(d: FeatureHost): Promise<void> {
    const f = this.f;
    const log = d.log.child({ service: f.name });
    const p = f.files(d.config.state_dir);
    f.prepare(p, d.config.state_dir);
    this.version = keaVersion();
    // Mutual TLS whenever the pair shares a secret (Kea 2.2 enforces it on the HA listener); basic auth on top
    // only where Kea checks it.
    this.tls = !!pairSecret(d.config);
    this.haAuth = this.tls && haListenerChecksAuth(this.version);
    const config = (c: Config): string => {
      // The files before the config that names them; never logged (status shows only what is in use).
      if (this.tls) { const id = ensureHaTls(c); this.tlsSource = id.source; this.tlsId = id.id; }
      if (this.haAuth) writeFileAtomic(p.haPassword, haAuthPassword(c)!, 0o600);
      return JSON.stringify(f.config(c, { tls: this.tls, basicAuth: this.haAuth }), null, 2);
    };
    this.written = config(d.config); // throws naming the field; the daemon then stops (Feature.start)
    writeFileAtomic(p.config, this.written);
    this.proc = new Supervised({
      name: f.binary, cmd: f.binary, args: ['-c', p.config], log, pidFile: p.pid,
      // Kea's own pid/lock files, socket and leases go beside its config, not in /run/kea and /var/lib/kea (one
      // Kea per node namespace).
      env: keaEnv(p as Parameters<typeof keaEnv>[0]),
      // A power cut leaves Kea's pid file behind; Kea refuses to start if that pid is now another process.
      beforeStart: () => { rmSync(`${p.dir}/${f.binary}.${f.binary}.pid`, { force: true }); rmSync(p.socket, { force: true }); },
      // Every HA heartbeat and lease update from the peer is a control command Kea logs at INFO: two lines a second.
      routine: /\bCOMMAND_RECEIVED\b/,
    });
    // What the pair looks like now (this feature can start while the daemon runs): a held Kea does not start.
    this.hold = KeaHold.from(d);
    if (this.hold.held) log.warn(`sync link down while the peer is alive on the LAN: ${f.label} does not start here (the LAN MASTER serves alone) so two servers never lease from one pool`);
    else this.proc.start();
    log.info(this.hold.held ? `${f.subject} configured (held)` : `${f.subject} started`, { config: p.config, mode: 'hot-standby', this_server: d.config.node.role, kea_version: this.version, ha_auth: this.authText() });
    if (!this.tls) log.warn(`${f.subject} HA listener without authentication: no statesync.key, peer.key or configsync.password to derive the pair's TLS identity from; only the ruleset (peer sync address, sync NIC) and the bind to the sync address keep others out`);
    this.timer = setInterval(() => {
      f.poll(p.socket, d.config).then((s) => { this.last = s; this.pollError = null; }, (e: Error) => { this.pollError = e.message; });
    }, POLL_MS);
    this.timer.unref();
    // Kea notices a powered-off partner only when a heartbeat's HTTP request times out (10 s in Kea 2.2: the
    // SYN goes unanswered). CARP knows sooner: when this node takes the LAN VIP because the peer went silent,
    // make the local Kea serve the primary's scope now. Kea resets the scopes itself at its next HA transition
    // (partner-down, or hot-standby again once the peer is back and synced).
    const reconcile = (change: HoldChange) => {
      if (!change || !this.proc) return;
      if (change === 'hold') {
        log.warn(`sync link down while the peer is alive on the LAN: ${f.label} stops here (the LAN MASTER serves alone) so two servers never lease from one pool`);
        void this.proc.stop();
      } else {
        log.info(this.hold.syncDown ? `this node is now the LAN MASTER: ${f.label} starts (its partner is unreachable: it serves alone)` : `sync link back: ${f.label} starts again and takes the leases made meanwhile from its partner`);
        this.proc.start();
      }
    };
    this.onAlarm = (ev: AlarmEvent) => reconcile(this.hold.alarm(ev));
    d.on('alarm', this.onAlarm);
    this.onTransition = (t: Transition) => {
      reconcile(this.hold.transition(t));
      // Any internal network's takeover (the pair moves as one; Kea's scopes are per server, not per subnet).
      if (t.interface === 'wan' || t.interface === 'sync' || t.to !== 'MASTER' || t.reason !== Why.MASTER_DOWN) return;
      // Only a standby that was in touch with its partner (HOT-STANDBY, not serving the primary's scope):
      // a Kea still WAITING/SYNCING at boot must finish its own handshake first.
      f.poll(p.socket, d.config).then(async (s) => {
        if (s.ha_state !== 'hot-standby' || s.scopes.includes('primary')) return;
        const r = await keaCommand(p.socket, 'ha-scopes', { scopes: ['primary'] });
        log.warn(`peer silent and LAN VIP taken: ${f.label} serves the primary scope now`, { result: r?.result, text: r?.text });
      }).catch((e: Error) => log.error(`ha-scopes failed; ${f.label} takes over when its heartbeat times out`, { err: e }));
    };
    d.on('transition', this.onTransition);
    this.onConfig = serialApply({
      service: f.name, sections: [f.name], log,
      wants: (next) => next[f.name] !== undefined, // the section left: the daemon stops this feature (daemon/services.ts)
      apply: (next) => this.reload(next, config, p, log),
      refused: `new ${f.name} config refused; ${f.label} keeps the previous one`,
    });
    d.on('config', this.onConfig);
    this.daemon = d;
  }

  /** Check with `<binary> -t`, put in place, config-reload; a config Kea refuses leaves the previous one in force. */
  private async reload(next: Config, config: (c: Config) => string, p: KeaFiles, log: FeatureHost['log']): Promise<void> {
    const f = this.f;
    let text: string;
    const tlsBefore = this.tlsId;
    try { text = config(next); } catch (e) { throw coded(e as Error, `DG_ERR_${f.tag}_CONFIG`); }
    // A new pair secret changes the TLS files, not the config text: Kea must reload them too.
    if (text === this.written && this.tlsId === tlsBefore) return;
    const candidate = `${p.config}.next`;
    writeFileAtomic(candidate, text);
    const t = await execFileP(f.binary, ['-t', candidate], { timeout: 20_000, env: { ...process.env, ...keaEnv(p as Parameters<typeof keaEnv>[0]) } })
      .then(() => null, (e: any) => String(e.stdout ?? '') + String(e.stderr ?? e.message));
    if (t !== null) {
      const why = t.split('\n').filter((l) => /ERROR|rror encountered|FATAL/.test(l)).slice(0, 3).join(' | ') || t.trim().slice(-300);
      throw coded(new Error(`${f.binary} -t refuses the generated ${candidate}: ${why} (check the ${f.name} section)`), `DG_ERR_${f.tag}_REFUSED`);
    }
    const before = this.written;
    renameSync(candidate, p.config);
    this.written = text;
    let r: any;
    try { r = await keaCommand(p.socket, 'config-reload', undefined, 10_000); } catch (e) {
      // Kea is not answering (starting, or held stopped): it reads the checked file when it starts.
      log.warn(`config-reload failed; ${f.subject} reads the new config when it (re)starts`, { err: e });
      if (!this.hold.held) void this.proc?.restart();
      return;
    }
    if (r?.result === 0) { log.info(`${f.subject} reloaded its config`, { text: r.text }); return; }
    // Kea refused what -t accepted (e.g. a resource at run time): put the previous file back and keep Kea on it.
    writeFileAtomic(p.config, before);
    this.written = before;
    await keaCommand(p.socket, 'config-reload', undefined, 10_000).catch(() => { if (!this.hold.held) void this.proc?.restart(); });
    throw coded(new Error(`${f.subject} refused config-reload: ${r?.text ?? JSON.stringify(r)} (check the ${f.name} section)`), `DG_ERR_${f.tag}_REFUSED`);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.onTransition) this.daemon?.off('transition', this.onTransition);
    if (this.onConfig) this.daemon?.off('config', this.onConfig);
    if (this.onAlarm) this.daemon?.off('alarm', this.onAlarm);
    await this.proc?.stop();
  }

  status(): Record<string, unknown> {
    const what = this.f.name === 'dhcp' ? 'DHCP' : 'DHCPv6';
    return {
      ha_state: this.last?.ha_state ?? null, partner_state: this.last?.partner_state ?? null, scopes: this.last?.scopes ?? [],
      leases: this.last?.leases ?? null, ...this.f.statusExtra?.(this.last), kea: this.proc?.status() ?? null, kea_version: this.version,
      ha_auth: this.authText(),
      ...(this.hold.held ? { held: `sync link down: the peer is the LAN MASTER and serves ${what} alone; ${this.f.label} starts again when the sync link is back` } : {}),
      ...(this.pollError ? { poll_error: this.pollError } : {}),
    };
  }
}
