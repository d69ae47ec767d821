// Config sync as a daemon service. Both nodes: the config store (history, diff, revert, live apply through
// Daemon.reconfigure). Primary: pushes every committed revision to the secondary (push.ts) and checks for
// drift. Secondary: the XML-RPC server on its sync address; validates what it receives in a staging copy,
// applies it, records it, and answers with the revision it applied or a fault naming what is wrong.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { FeatureHost, Service } from '../feature.js';
import type { Handler } from '../control/server.js';
import { SCHEMA_VERSION, allNets, type Config } from '../config/schema.js';
import { ConfigError, configYaml, validateConfig, yamlConfigError } from '../config/load.js';
import { checkConfig } from '../config/check.js';
import { writeFileAtomic } from '../io/atomic.js';
import { ConfigStore, diffConfigs, hashOf, type Origin, type Revision } from '../configstore/store.js';
import type { ConfigSyncConfig } from './schema.js';
import { currentSections, getSection, outgoingSections, setSection, syncable, syncedHash, unsyncable } from './sections.js';
import { SyncServer } from './server.js';
import { SyncClient, SyncError, type FailureClass } from './client.js';
import { PushQueue } from './push.js';
import { forPeer, peerNetworks } from './compat.js';
import { PinStore, loadOrCreateIdentity, normalizeFingerprint } from './tls.js';
import { Fault, XmlRpcFault, type XmlRpcValue } from './xmlrpc.js';
import { OffLoopDecoder } from './decode-worker.js';
import { ApplyTracker, type SectionRejection } from '../daemon/apply.js';
import type { Logger } from '../log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export function firmwareVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try { return JSON.parse(readFileSync(path.resolve(here, rel), 'utf8')).version; } catch { /* next */ }
  }
  return 'unknown';
}

/** How long the secondary waits for its services to apply a push before it answers (the primary waits 20 s). */
const APPLY_WAIT_MS = 15_000;

/** A section of the last push that a service refused (secondary; shown by status and sent to the primary). */
export interface RejectedSection { section: string; service: string; code: string; reason: string }

/** Sections read only at start: a live apply that changes them is refused (restart with the new file). */
const RESTART_ONLY = ['schema', 'node', 'interfaces', 'control', 'state_dir'] as const;

interface PeerState {
  acked: { seq: number; hash: string; peer_revision: string; synced_hash: string; at: string } | null;
  lastError: { class: FailureClass | 'drift'; message: string; at: string; attempt: number } | null;
  peerSyncedHash: string | null;
  localEdits: string[];
  attempts: number;
  /** What the secondary refused of the last push (its previous config of those sections stays in force there). */
  rejected: RejectedSection[];
  /** The secondary's release as its last answer showed it, and what the push leaves out for it (compat.ts). */
  release: ReturnType<typeof peerNetworks> | null;
  omitted: string[];
}

export class ConfigSyncService implements Service {
  readonly name = 'configsync';
  private d!: FeatureHost;
  store!: ConfigStore;
  private server: SyncServer | null = null;
  private queue: PushQueue | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private pins!: PinStore;
  private fingerprint: string | null = null;
  private peer: PeerState = { acked: null, lastError: null, peerSyncedHash: null, localEdits: [], attempts: 0, rejected: [], release: null, omitted: [] };
  /** Secondary: the sections of the last push that kept their previous config, or null when all applied. */
  private rejected: { at: string; primary_seq: number; sections: RejectedSection[] } | null = null;
  private applying: Promise<unknown> = Promise.resolve();
  /** What unregisters each control command this service registered. */
  private readonly unhandle: (() => void)[] = [];
  /** A large config file is parsed off the event loop (a 5,000-rule file: ~0.5 s of YAML parsing). */
  private readonly yaml = new OffLoopDecoder();
  /** The config file the daemon was started with (set by `duogate run`); local applies rewrite it. */
  private bootFile = process.env.DUOGATE_CONFIG_FILE ?? null;

  private get cfg(): ConfigSyncConfig { return this.d.config.configsync as ConfigSyncConfig; }
  private get isPrimary(): boolean { return this.d.config.node.role === 'primary'; }

  async start(d: FeatureHost): Promise<void> {
    this.d = d;
    this.store = new ConfigStore(d.config.state_dir, this.cfg.history);
    this.pins = new PinStore(d.config.state_dir);
    for (const c of this.cfg.sections) { const why = unsyncable(c); if (why) throw new ConfigError('<config>', 'configsync.sections', why); }
    this.reconcileAtBoot();
    this.registerControl();
    if (this.isPrimary) this.startPrimary(); else await this.startSecondary();
  }

  // ---- the store and local apply (both nodes) ----

  /**
   * Record what the node started with, if it is not the latest revision. Primary: the config file is
   * authoritative. Secondary: the daemon started from the file plus the sections last received from the primary
   * (bootConfig, before any feature started), so this only records.
   */
  private reconcileAtBoot(): void {
    const latest = this.store.latest();
    const effective = this.d.config;
    let why = latest ? 'config file changed while the daemon was stopped' : 'initial config';
    const rx = this.isPrimary ? null : lastReceived(this.store);
    if (rx) {
      why = hashOf(withReceived(effective, rx, latest!)) === hashOf(effective) ? 'config at start (file + sections last received from the primary)'
        : 'config at start: the sections last received from the primary do not load, the file\'s are in force until the primary pushes again';
    }
    if (latest?.hash === hashOf(effective)) return;
    const text = this.bootFile && this.isPrimary ? safeRead(this.bootFile) : undefined;
    const rev = this.store.record(effective, { description: why, origin: 'boot', text });
    this.d.log.info('config revision recorded', { seq: rev.seq, hash: rev.hash.slice(0, 12), why });
  }

  private lastFromPrimary(): Revision | null { return lastReceived(this.store); }

  /** Serialize every change of the running config (local apply, revert, received sync). */
  private exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.applying.then(fn);
    this.applying = run.catch(() => {});
    return run;
  }

  /**
   * Put `cfg` (what was in force) back live after a refused apply. The tools refused the new config, so what they
   * run is still the previous one; a second refusal here (the disk still failing) changes nothing in force.
   */
  private async putBack(cfg: Config): Promise<void> {
    const back = new ApplyTracker();
    try { this.d.reconfigure(cfg, back); } catch (e) { this.d.log.error('putting the previous config back failed', { err: e }); }
    for (const r of await back.settle(APPLY_WAIT_MS)) {
      this.d.log.warn('re-applying the previous section failed too; it is still in force', { sections: r.sections, service: r.service, code: r.code, reason: r.reason });
    }
  }

  /** Validate, apply live and wait for the services (all or nothing), then write the config file, record the revision, push. */
  async applyLocal(next: Config, text: string | undefined, description: string, origin: Origin, writeFile = true): Promise<Record<string, unknown>> {
    const cur = this.d.config;
    // Runtime paths may be overridden on the command line (--socket, --state-dir): keep what runs.
    next.control = structuredClone(cur.control);
    next.state_dir = cur.state_dir;
    for (const k of RESTART_ONLY) {
      if (JSON.stringify(next[k]) !== JSON.stringify(cur[k])) {
        throw new ConfigError('<apply>', k, `differs from the running config: "${k}" is read at start only; restart the daemon with the new file instead`);
      }
    }
    const hash = hashOf(next);
    if (hash === hashOf(cur)) return { changed: false, seq: this.store.latest()?.seq ?? null, hash };
    const errors = checkConfig(next).filter((f) => f.level === 'error');
    if (errors.length) throw new ConfigError('<apply>', errors[0].field, `${errors[0].message} (duogate check lists all ${errors.length})`);
    // Live first, and all or nothing: a config a service's tool refuses (nft, unbound, Kea) is put back and never
    // written, recorded or pushed, so neither node can start from it. A crash before the file is written leaves
    // the previous file, which is what ran until the apply answered.
    const tracker = new ApplyTracker();
    let live: ReturnType<FeatureHost['reconfigure']>;
    try { live = this.d.reconfigure(next, tracker); } catch (e) {
      this.d.log.error('config apply failed; back to the previous config', { err: e });
      await this.putBack(cur);
      throw Object.assign(new Error(`apply failed, nothing changed: ${(e as Error).message}`), { code: 'DG_ERR_APPLY_FAILED' });
    }
    const rejected = await tracker.settle(APPLY_WAIT_MS);
    if (rejected.length) {
      await this.putBack(cur);
      const r = rejected[0];
      const what = r.sections.length ? r.sections.join(', ') : r.service;
      this.d.log.error('config apply refused by a service; the previous config stays in force', { description, rejected });
      throw Object.assign(new Error(`${what} refused by ${r.service}: ${r.reason}; nothing changed (the previous config stays in force, nothing written or synced)`), { code: r.code });
    }
    // The file first: a crash after it and before the revision is recorded at the next start ("changed while stopped").
    if (writeFile && this.bootFile && text !== undefined) writeFileAtomic(this.bootFile, text, 0o600);
    const rev = this.store.record(next, { description, origin, text });
    this.d.log.info('config revision applied', { seq: rev.seq, hash: rev.hash.slice(0, 12), description, origin });
    this.queue?.kick();
    return { changed: true, seq: rev.seq, hash: rev.hash, live, sync: this.queue ? 'queued' : 'none (secondary)' };
  }

  private registerControl(): void {
    const c = { handle: (cmd: string, h: Handler) => { this.unhandle.push(this.d.handle(cmd, h)); } };
    c.handle('config.apply', (req) => this.exclusive(async () => {
      const file = String(req.file ?? '<apply>');
      let doc: unknown;
      try { doc = await this.yaml.parseYaml(String(req.text ?? '')); } catch (e) { throw yamlConfigError(file, e); }
      const next = validateConfig(doc, file);
      await yieldToLoop();
      // write_file: false applies for this run only (the demo, on the repo's own config files): the next start
      // goes back to what the file says.
      return this.applyLocal(next, String(req.text), String(req.description || `duogate config apply ${path.basename(file)}`), 'local', req.write_file !== false);
    }));
    c.handle('config.revert', (req) => this.exclusive(() => {
      const rev = this.store.get(String(req.ref ?? '-1'));
      const next = structuredClone(rev.config);
      // Node-local sections stay as they run: a revert changes configuration, not identity or NICs.
      for (const k of RESTART_ONLY) (next as Record<string, unknown>)[k] = structuredClone(this.d.config[k]);
      const text = rev.text && hashOf(validateConfig(YAML.parse(rev.text))) === hashOf(next) ? rev.text : configYaml(next);
      return this.applyLocal(validateConfig(next), text, String(req.description || `revert to #${rev.seq} (${rev.hash.slice(0, 12)})`), 'revert');
    }));
    c.handle('config.history', () => this.store.list());
    c.handle('config.diff', (req) => {
      const a = this.store.get(String(req.a ?? '-1'));
      const b = req.b === undefined ? this.store.latest()! : this.store.get(String(req.b));
      return { a: { seq: a.seq, hash: a.hash }, b: { seq: b.seq, hash: b.hash }, lines: diffConfigs(a.config, b.config) };
    });
    c.handle('config.sync', () => {
      if (!this.queue) throw new ConfigError('<sync>', 'node.role', 'only the primary pushes; run it there');
      this.peer.localEdits = [];
      this.queue.kick();
      return { queued: true };
    });
  }

  // ---- primary ----

  private client(): SyncClient {
    const pin = this.cfg.peer_fingerprint ?? this.pins.get()?.fingerprint ?? null;
    return new SyncClient({
      host: this.peerAddress(), port: this.cfg.port, username: this.cfg.username, password: this.cfg.password, pin,
      connectTimeoutMs: 3000, callTimeoutMs: 20_000, // idle time: a 1,000-rule apply answers within ~1 s
    });
  }
  private peerAddress(): string {
    const a = this.cfg.peer ?? this.d.config.interfaces.sync.peer;
    if (!a) throw new ConfigError('<config>', 'configsync.peer', 'not set and interfaces.sync.peer is not set either: the primary needs the secondary\'s sync address');
    return a;
  }

  private readonly onSyncLink = (running: boolean): void => {
    if (running && this.queue && this.peer.lastError) this.queue.kick();
  };

  private startPrimary(): void {
    this.peerAddress();
    this.queue = new PushQueue(() => this.pushLatest(), { minMs: this.cfg.retry_min_ms, maxMs: this.cfg.retry_max_ms }, (e, attempt, retryIn) => {
      const cls: FailureClass = e instanceof SyncError ? e.cls : 'protocol';
      const message = (e as Error).message;
      const first = this.peer.lastError?.message !== message;
      this.peer.lastError = { class: cls, message, at: new Date().toISOString(), attempt };
      // One line per distinct failure, and again at attempts 4, 8, 16, ... (repeats are counted in status).
      if (first || (attempt >= 4 && (attempt & (attempt - 1)) === 0)) {
        this.d.log.warn(first ? 'config sync failed' : 'config sync still failing', { class: cls, reason: message, attempt, retry_in_ms: retryIn });
      }
    });
    this.queue.kick();
    // A push failing while the sync cable was out has backed off (up to retry_max_ms): retry when it is back.
    this.d.on('sync-link', this.onSyncLink);
    this.checkTimer = setInterval(() => void this.checkDrift(), this.cfg.check_interval_s * 1000);
    this.checkTimer.unref();
  }

  private async pushLatest(): Promise<void> {
    const target = this.store.latest();
    if (!target) return;
    this.peer.attempts++;
    const client = this.client();
    const info = await client.call('duogate.host_firmware_version', []) as Record<string, XmlRpcValue>;
    if (!this.cfg.peer_fingerprint && !this.pins.get() && client.seenFingerprint) {
      this.pins.set(client.seenFingerprint, this.peerAddress());
      this.d.log.warn('trusting the secondary\'s certificate on first use', { fingerprint: client.seenFingerprint, peer: this.peerAddress() });
    }
    this.fingerprint = client.seenFingerprint;
    if (info?.schema !== SCHEMA_VERSION) {
      throw new SyncError('version', `the secondary reads config schema ${info?.schema ?? '(unknown)'} (duogate ${info?.version}), this node ${SCHEMA_VERSION}: sync is refused until both run the same config schema`);
    }
    if (info.role !== 'secondary') throw new SyncError('rejected', `the peer at ${this.peerAddress()} is "${info.node}" with role ${info.role}, not a secondary: check configsync.peer`);
    this.peer.release = peerNetworks(info);
    const { sections, omitted } = this.outgoing(target.config);
    if (omitted.join('\n') !== this.peer.omitted.join('\n') && omitted.length) {
      this.d.log.warn('config sync: the secondary runs an older release; the push leaves out what it cannot load',
        { release: this.peer.release.release, omitted, fix: 'upgrade the secondary; the next push after its restart carries everything' });
    }
    this.peer.omitted = omitted;
    const cats = Object.keys(sections);
    const hash = syncedHash(sections);
    // Hashing and encoding a large config are each tens of ms: a turn of the event loop between them.
    await yieldToLoop();
    const res = await client.call('duogate.restore_config_section', [sections as XmlRpcValue, {
      schema: SCHEMA_VERSION, seq: target.seq, revision: target.hash, description: target.description,
      from: this.d.config.node.name, synced_hash: hash,
    }]) as Record<string, XmlRpcValue>;
    const rejected = Array.isArray(res?.rejected) ? (res.rejected as unknown as RejectedSection[]) : [];
    this.peer.rejected = rejected;
    if (rejected.length) {
      throw new SyncError('rejected', `the secondary applied #${target.seq} except ${rejected.map((r) => `${r.section} (${r.code}: ${r.reason})`).join('; ')}: `
        + 'those sections keep their previous config there; fix them here and apply again');
    }
    if (res?.synced_hash !== hash) {
      throw new SyncError('rejected', `the secondary answered synced-sections hash ${String(res?.synced_hash).slice(0, 12)}, expected ${hash.slice(0, 12)}: it did not apply what was sent`);
    }
    this.peer.acked = { seq: target.seq, hash: target.hash, peer_revision: String(res.revision), synced_hash: hash, at: new Date().toISOString() };
    this.peer.peerSyncedHash = hash;
    this.peer.localEdits = [];
    if (this.peer.lastError) this.d.log.info('config sync recovered', { after: this.peer.lastError.class });
    this.peer.lastError = null;
    this.d.log.info('config synced to the secondary', { seq: target.seq, hash: target.hash.slice(0, 12), peer_revision: String(res.revision).slice(0, 12), sections: cats });
  }

  /** The sections a push carries to this peer: all of them, or what a release before named networks can load. */
  private outgoing(config: Config): { sections: Record<string, unknown>; omitted: string[] } {
    const all = outgoingSections(config, this.cfg.sections);
    const r = this.peer.release;
    if (!r) return { sections: all, omitted: [] };
    // A current peer gets every network (and refuses, naming the field, one it lacks); sections it does not sync
    // (a later release's) are left out for any peer.
    return r.release === 'current' ? forPeer(all, [...allNets(config), ...r.nets], r.sections) : forPeer(all, r.nets, r.sections);
  }

  /** Compare the synced sections' hash with the secondary's; re-push a secondary that lost them, flag local edits. */
  private async checkDrift(): Promise<void> {
    // Busy includes the backoff wait after a failed or rejected push: the queue retries that on its own schedule
    // (up to retry_max_ms), and a kick here would restart its backoff and re-apply on the secondary at once.
    if (!this.queue || this.queue.busy || !this.peer.acked) return;
    try {
      const sent = this.outgoing(this.store.latest()!.config).sections;
      const st = await this.client().call('duogate.sync_status', [Object.keys(sent) as XmlRpcValue]) as Record<string, XmlRpcValue>;
      this.peer.peerSyncedHash = String(st.synced_hash);
      const local = syncedHash(sent);
      if (st.synced_hash === local) { if (this.peer.lastError?.class === 'drift') this.peer.lastError = null; return; }
      const edits = (st.local_edits as string[]) ?? [];
      if (edits.length) {
        this.peer.localEdits = edits;
        this.peer.lastError = { class: 'drift', message: `the secondary has local edits of synced sections (${edits.join(', ')}); "duogate config sync" overwrites them`, at: new Date().toISOString(), attempt: 0 };
        this.d.log.warn('config drift: the secondary has local edits of synced sections', { sections: edits });
      } else {
        this.d.log.warn('config drift: the secondary lacks the synced sections; pushing again', { peer_hash: String(st.synced_hash).slice(0, 12) });
        this.queue.kick();
      }
    } catch { /* unreachable now: the next push or check reports it */ }
  }

  // ---- secondary ----

  private async startSecondary(): Promise<void> {
    const id = loadOrCreateIdentity(this.d.config.state_dir, `duogate-${this.d.config.node.name}`);
    this.fingerprint = id.fingerprint;
    const address = this.d.config.interfaces.sync.address.split('/')[0];
    this.server = new SyncServer({
      address, port: this.cfg.port, key: id.key, cert: id.cert, username: this.cfg.username, password: this.cfg.password,
      maxBodyBytes: this.cfg.max_body_bytes, authMaxFailures: this.cfg.auth_max_failures, authWindowS: this.cfg.auth_window_s,
      log: this.d.log.child({ svc: 'configsync' }),
    });
    this.server.method('duogate.host_firmware_version', () => ({
      version: firmwareVersion(), schema: SCHEMA_VERSION, node: this.d.config.node.name, role: this.d.config.node.role,
      // Which networks this node has: a primary leaves out of its push the networks of a peer that does not say (compat.ts).
      networks: allNets(this.d.config), sections: syncable(),
    }));
    this.server.method('duogate.sync_status', (params) => this.syncStatus(syncStatusNames(params[0])));
    this.server.method('duogate.restore_config_section', (params, from) => this.exclusive(() => this.receive(params, from)));
    await this.server.listen();
    this.d.log.info('config sync server listening', { address, port: this.cfg.port, fingerprint: id.fingerprint });
  }

  private syncStatus(cats?: string[]): Record<string, XmlRpcValue> {
    const rx = this.lastFromPrimary();
    // Only a change made here (config apply, revert) is a local edit: a start from the file because the received
    // sections no longer load is not, and the primary's drift check pushes again over it.
    const edited = !!rx && this.store.list().some((r) => r.seq > rx.seq && (r.origin === 'local' || r.origin === 'revert'));
    return syncStatusOf(this.d.config, this.store.latest(), rx, cats, edited);
  }

  private async receive(params: XmlRpcValue[], from: string): Promise<XmlRpcValue> {
    const [sections, meta] = params as [Record<string, XmlRpcValue>, Record<string, XmlRpcValue>];
    const isStruct = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date);
    if (params.length !== 2 || !isStruct(sections) || !isStruct(meta)) {
      throw new XmlRpcFault(Fault.INVALID_PARAMS, 'restore_config_section takes (struct sections, struct meta)');
    }
    if (meta.schema !== SCHEMA_VERSION) {
      throw new XmlRpcFault(Fault.VERSION_MISMATCH, `this node reads config schema ${SCHEMA_VERSION}, the primary sent schema ${meta.schema}: run the same duogate version on both nodes`);
    }
    if (this.d.config.node.role !== 'secondary') throw new XmlRpcFault(Fault.NOT_SECONDARY, `${this.d.config.node.name} is a ${this.d.config.node.role}: only a secondary accepts config`);
    const cats = Object.keys(sections);
    for (const cat of cats) {
      const why = unsyncable(cat);
      if (why) throw new XmlRpcFault(Fault.INVALID_CONFIG, `section ${cat} refused: ${why}`);
    }
    const prev = this.d.config;
    const staging = structuredClone(prev);
    for (const cat of cats) setSection(staging, cat, structuredClone(sections[cat]));
    let next: Config;
    try { next = validateConfig(staging, `sync from ${meta.from ?? from}`); } catch (e) {
      const ce = e as ConfigError;
      this.d.log.warn('config from the primary refused: it does not validate', { from, field: ce.field, reason: ce.reason });
      throw new XmlRpcFault(Fault.INVALID_CONFIG, `refused, nothing changed: ${ce.field || '(top level)'}: ${ce.reason}`);
    }
    const errors = checkConfig(next).filter((f) => f.level === 'error');
    if (errors.length) {
      this.d.log.warn('config from the primary refused: it fails the checks on this node', { from, field: errors[0].field, reason: errors[0].message });
      throw new XmlRpcFault(Fault.INVALID_CONFIG, `refused, nothing changed: ${errors[0].field}: ${errors[0].message}`);
    }
    let rejected: SectionRejection[] = [];
    if (hashOf(next) !== hashOf(prev)) {
      const tracker = new ApplyTracker();
      try { this.d.reconfigure(next, tracker); } catch (e) {
        this.d.log.error('applying the config from the primary failed; back to the previous one', { err: e });
        try { this.d.reconfigure(prev); } catch { /* already logged by the daemon */ }
        throw new XmlRpcFault(Fault.APPLY_FAILED, `apply failed, previous config restored: ${(e as Error).message}`);
      }
      // The services apply on their own time (nft, unbound-checkconf, Kea): wait for them, so the answer says
      // what is in force. A section a tool refused keeps its previous config here, in the store and after a
      // restart; the rest of the push stays applied. The daemon keeps running either way.
      rejected = await tracker.settle(APPLY_WAIT_MS);
      if (rejected.length) {
        const kept = structuredClone(next);
        for (const r of rejected) for (const sec of r.sections) setSection(kept, sec, structuredClone(getSection(prev, sec) ?? null));
        for (const r of rejected) {
          this.d.log.error('a section from the primary was refused; its previous config stays in force', { from, sections: r.sections, service: r.service, code: r.code, reason: r.reason });
        }
        await this.putBack(kept);
        next = kept;
      }
    }
    this.rejected = rejected.length ? {
      at: new Date().toISOString(), primary_seq: Number(meta.seq),
      sections: rejected.flatMap((r) => (r.sections.length ? r.sections : [r.service]).map((section) => ({ section, service: r.service, code: r.code, reason: r.reason }))),
    } : null;
    const synced = syncedHash(currentSections(next, cats));
    const hash = hashOf(next);
    const latest = this.store.latest();
    let rev = latest;
    if (!latest || latest.hash !== hash || latest.origin !== 'primary' || latest.primary_revision?.seq !== meta.seq) {
      rev = this.store.record(next, {
        description: `received from the primary ${meta.from ?? from} (its #${meta.seq} ${String(meta.revision).slice(0, 12)}: ${meta.description ?? ''})`,
        origin: 'primary', synced: cats, synced_hash: synced, primary_revision: { seq: Number(meta.seq), hash: String(meta.revision) },
      });
      this.d.log.info(rejected.length ? 'config received from the primary and applied in part' : 'config received from the primary and applied',
        { seq: rev.seq, hash: hash.slice(0, 12), primary_seq: meta.seq, sections: cats, ...(rejected.length ? { kept_previous: this.rejected!.sections.map((x) => x.section) } : {}) });
    }
    return { revision: rev!.hash, seq: rev!.seq, synced_hash: synced, rejected: (this.rejected?.sections ?? []) as unknown as XmlRpcValue };
  }

  // ---- status ----

  status(): Record<string, unknown> {
    if (!this.d) return {};
    const latest = this.store.latest();
    const base = { revision: latest ? { seq: latest.seq, hash: latest.hash.slice(0, 12), time: latest.time, description: latest.description, origin: latest.origin } : null };
    if (!this.isPrimary) {
      const s = this.syncStatus();
      return {
        ...base, listening: this.server ? `${this.d.config.interfaces.sync.address.split('/')[0]}:${this.cfg.port}` : null,
        certificate: this.fingerprint, received: s.received, synced_hash: String(s.synced_hash).slice(0, 12),
        local_edits: s.local_edits, drift: (s.local_edits as string[]).length > 0, server: this.server?.counters,
        rejected: this.rejected,
      };
    }
    const p = this.peer;
    const all = this.store.list();
    const behind = p.acked ? all.filter((r) => r.seq > p.acked!.seq).length : all.length;
    const local = latest ? syncedHash(this.outgoing(latest.config).sections) : null;
    const state = p.lastError ? (p.lastError.class === 'drift' ? 'drift' : 'failing') : behind === 0 ? 'in_sync' : 'behind';
    const pinned = this.cfg.peer_fingerprint
      ? { fingerprint: normalizeFingerprint(this.cfg.peer_fingerprint), by: 'config' }
      : this.pins.get() ? { fingerprint: this.pins.get()!.fingerprint, by: `trust on first use (${this.pins.get()!.since})` } : { fingerprint: null, by: 'trust on first use (not contacted yet)' };
    return {
      ...base,
      peer: {
        address: `${this.cfg.peer ?? this.d.config.interfaces.sync.peer}:${this.cfg.port}`, state, revisions_behind: behind,
        error: p.lastError, last_success: p.acked?.at ?? null, acked_seq: p.acked?.seq ?? null,
        peer_revision: p.acked?.peer_revision.slice(0, 12) ?? null,
        synced_hash: { local: local?.slice(0, 12) ?? null, peer: p.peerSyncedHash?.slice(0, 12) ?? null },
        certificate: pinned, sections: this.cfg.sections, attempts: p.attempts, rejected: p.rejected,
        release: p.release?.release ?? null, omitted: p.omitted,
        next_retry_in_ms: this.queue?.nextRetryAt ? Math.max(0, Math.round(this.queue.nextRetryAt - performance.now())) : null,
      },
    };
  }

  async stop(): Promise<void> {
    // The feature can stop while the daemon runs (its section removed): its commands must not reach it.
    for (const off of this.unhandle.splice(0)) off();
    this.d?.off('sync-link', this.onSyncLink);
    await this.yaml.close();
    this.queue?.stop();
    if (this.checkTimer) clearInterval(this.checkTimer);
    await this.server?.close();
  }
}

/** The last revision received from the primary, or null. */
function lastReceived(store: ConfigStore): Revision | null {
  const m = [...store.list()].reverse().find((r) => r.origin === 'primary');
  return m ? store.get(m.seq) : null;
}

/**
 * `config` with the sections the primary syncs (those `rx` carried) as the store's latest revision has them (absent
 * ones deleted): what was last in force, a local edit made since the push included.
 */
function withReceived(config: Config, rx: Revision, latest: Revision): Config {
  const out = structuredClone(config);
  for (const cat of rx.synced ?? []) setSection(out, cat, structuredClone(getSection(latest.config, cat) ?? null));
  return out;
}

/**
 * The config a secondary starts from: its file with the synced sections as last in force (received from the
 * primary, or edited here since), so
 * every feature starts from them in the features' order (the firewall before the config sync server listens).
 * That revision was recorded only as far as it was in force (a refused section kept its previous value), so it
 * is what ran: a feature that fails to start from it fails the daemon's start as one from the file would (a
 * fault of the node, e.g. nft missing, that the file's sections would meet too). Sections that no longer load
 * or no longer pass `duogate check` with this file (a firmware upgrade changed the schema or the file, e.g. the
 * file gained a network the received VIPs lack) cannot heal by a restart: the file's are used, said loudly, and
 * the primary's next push puts the synced ones back. Never throws.
 */
export function bootConfig(config: Config, log: Logger): Config {
  if (config.node.role === 'primary' || !config.configsync) return config;
  let rx: Revision | null = null;
  try {
    const store = new ConfigStore(config.state_dir, (config.configsync as ConfigSyncConfig).history);
    rx = lastReceived(store);
    if (!rx) return config;
    const label = `the sections received from the primary (revision #${rx.seq})`;
    const merged = validateConfig(withReceived(config, rx, store.latest()!), label);
    // Checked with this file's node-local parts: an older release received them for its own networks (a rolling
    // upgrade: no guest VIP), and this file's dhcp scope on guest needs one.
    const errors = checkConfig(merged).filter((f) => f.level === 'error');
    if (errors.length) throw new ConfigError(label, errors[0].field, errors[0].message);
    if (hashOf(merged) === hashOf(config)) return config;
    log.info('starting with the sections last received from the primary', { seq: rx.seq, primary_seq: rx.primary_revision?.seq ?? null, sections: rx.synced ?? [] });
    return merged;
  } catch (e) {
    log.error('the sections last received from the primary cannot be used at start; the config file\'s are in force until the primary pushes again (duogate config sync on the primary)',
      { seq: rx?.seq ?? null, err: e, field: (e as ConfigError).field, reason: (e as ConfigError).reason });
    return config;
  }
}

/** The names a `duogate.sync_status` caller asks about: syncable section names only. A node-local name would
 * make the answer a hash over node-local secrets (configsync.password, statesync.key, peer.key), which a caller
 * could test guesses against. */
export function syncStatusNames(param: XmlRpcValue | undefined): string[] | undefined {
  if (param === undefined || param === null) return undefined;
  if (!Array.isArray(param) || param.some((n) => typeof n !== 'string')) throw new XmlRpcFault(Fault.INVALID_PARAMS, 'sync_status takes an array of section names, e.g. ["vips", "firewall"]');
  for (const n of param as string[]) {
    const why = unsyncable(n);
    if (why) throw new XmlRpcFault(Fault.INVALID_PARAMS, `section ${n} refused: ${why}`);
  }
  return param as string[];
}

/** The `duogate.sync_status` answer: hashes of the synced sections and revision ids, never a config value. */
export function syncStatusOf(config: Config, latest: Revision | null, rx: Revision | null, cats?: string[], edited = true): Record<string, XmlRpcValue> {
  const names = cats ?? rx?.synced ?? [];
  const cur = syncedHash(currentSections(config, names));
  const edits = rx && edited ? names.filter((n) => hashOf(getSection(config, n) ?? null) !== hashOf(getSection(rx.config, n) ?? null)) : [];
  return {
    node: config.node.name, revision: latest ? { seq: latest.seq, hash: latest.hash } : null, synced_hash: cur,
    received: rx ? { seq: rx.seq, hash: rx.hash, at: rx.time, primary_seq: rx.primary_revision?.seq ?? null } : null,
    local_edits: edits,
  };
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

function safeRead(f: string): string | undefined { try { return readFileSync(f, 'utf8'); } catch { return undefined; } }

