// The `mqtt` service: publishes this node's telemetry to an MQTT broker with mqtt.js.
//   <prefix>/<node>/availability  retained `online`; `offline` is the MQTT last will (and sent on a clean stop)
//   <prefix>/<node>/state         retained JSON (state.ts), on every change and every interval_s
//   <prefix>/<node>/event         non-retained JSON: CARP transitions, maintenance, alarms (split brain, ...)
//   <discovery prefix>/...        Home Assistant discovery (discovery.ts), retained, again on HA's `online`
//   <prefix>/<node>/cmd/maintenance  ON/OFF (enter/leave), only with `commands: true`
//
// Telemetry must never hold up the gateway: every publish is fire-and-forget on the event loop, nothing waits
// for the broker, at most one state document is in flight (later ones coalesce), events queue boundedly while
// the broker is away, and a dead/slow/refusing broker only backs off (doubling, jittered, capped) with its
// last error in `duogate status`.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { AlarmEvent, FeatureHost, Service, Transition } from '../feature.js';
import { native } from '../io/native.js';
import { clientCertProblem, type MqttConfig } from './config.js';
import { urlWithoutCredentials } from '../config/secrets.js';
import { discoveryMessages, discoveryNodeId, staleDiscovery } from './discovery.js';
import { SyncWatch, featureFigures, stateDocument, syncProblems } from './state.js';

/** Events kept while disconnected (the oldest go first); the retained state carries the present anyway. */
const EVENT_QUEUE = 100;
/** Unacknowledged publishes beyond which new events are dropped (a broker that stopped reading). */
const MAX_INFLIGHT = 200;
/** How often the state is checked for changes that come without an event (feature figures, counters). */
const CHANGE_CHECK_MS = 1000;
/** A state-sync or config-sync problem becomes an alarm after it has lasted this long (start-ups and
 * failovers pass through short ones). */
const SYNC_ALARM_HOLD_MS = 10_000;

export function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../../package.json', '../../../package.json']) {
    try { return JSON.parse(readFileSync(path.resolve(here, rel), 'utf8')).version; } catch { /* next */ }
  }
  return 'unknown';
}

/**
 * A connection error for status: OpenSSL's alerts shortened to their text (`tlsv13 alert certificate required
 * (SSL alert number 116)` rather than a line with a source path), plus what to do when the broker refused this
 * node's client certificate or wanted one. Other errors pass unchanged.
 */
export function describeError(e: Error & { code?: unknown }, hasCert: boolean): string {
  const m = /SSL routines:[^:]*:([^:]+):[\s\S]*?(SSL alert number \d+)?\s*$/.exec(e.message);
  const msg = m ? `${m[1]}${m[2] ? ` (${m[2]})` : ''}` : e.message;
  const code = typeof e.code === 'string' ? e.code : '';
  let hint = '';
  if (!hasCert && /ALERT_CERTIFICATE_REQUIRED$/.test(code)) hint = 'the broker requires a client certificate: set mqtt.cert and mqtt.key';
  else if (!hasCert && /ALERT_HANDSHAKE_FAILURE$/.test(code)) hint = 'if the broker requires a client certificate, set mqtt.cert and mqtt.key';
  else if (hasCert && /ALERT_UNKNOWN_CA$/.test(code)) hint = 'the broker does not trust the CA that signed mqtt.cert: use a certificate from the CA in the broker\'s cafile';
  else if (hasCert && /ALERT_(BAD_CERTIFICATE|CERTIFICATE_\w+|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)$/.test(code)) hint = 'the broker refused the client certificate in mqtt.cert';
  return hint ? `${msg}: ${hint}` : msg;
}

/** The broker URL without credentials, for status and logs. */
const redact = urlWithoutCredentials;

export class MqttTelemetry implements Service {
  readonly name = 'mqtt';
  private d!: FeatureHost;
  private client: MqttClient | null = null;
  private readonly version = packageVersion();
  private base = '';
  private stopping = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private changeTimer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private queue: Record<string, unknown>[] = [];
  private inflight = 0;
  private stateInFlight = false;
  private stateDirty = false;
  private lastDigest = '';
  private lastStatePublish = 0;
  private st = {
    state: 'starting' as 'starting' | 'connecting' | 'connected' | 'backoff' | 'stopped' | 'error',
    connected_since: null as string | null, last_error: null as string | null, last_error_at: null as string | null,
    connects: 0, reconnects: 0, next_retry_at: null as string | null,
    published_states: 0, published_events: 0, events_dropped: 0, commands_accepted: 0, commands_rejected: 0,
  };
  private readonly onTransition = (t: Transition) => this.event({ type: 'transition', vhid: t.vhid, interface: t.interface, address: t.address, from: t.from, to: t.to, why: t.why, at: t.at });
  private readonly onMaintenance = (on: boolean) => this.event({ type: 'maintenance', on, by: this.d.maintenanceState()?.by ?? null, at: new Date().toISOString() });
  private readonly onAlarm = (a: AlarmEvent) => this.event({ ...a, type: 'alarm' });
  /**
   * A live config apply may add or remove VIPs: their entities follow. The mqtt: section itself is read at start
   * (the feature runner says when a change to it needs a restart).
   */
  private readonly onConfig = () => {
    if (this.client?.connected && this.c.discovery.enabled) this.publishDiscovery();
    this.stateDirty = true;
    setImmediate(() => this.publishState(true));
  };
  /** Discovery topics with a config published by this run, so entities that went away get deleted. */
  private discoveryTopics = new Set<string>();
  private readonly syncWatch = new SyncWatch(SYNC_ALARM_HOLD_MS);

  constructor(private readonly c: MqttConfig) {}

  start(d: FeatureHost): void {
    this.d = d;
    this.base = `${this.c.prefix}/${d.config.node.name}`;
    d.on('transition', this.onTransition);
    d.on('maintenance', this.onMaintenance);
    d.on('alarm', this.onAlarm);
    d.on('config', this.onConfig);
    this.periodic = setInterval(() => this.publishState(true), this.c.interval_s * 1000);
    this.changeTimer = setInterval(() => this.tick(), CHANGE_CHECK_MS);
    this.periodic.unref(); this.changeTimer.unref();
    this.connect();
  }

  private options(): IClientOptions | null {
    const o: IClientOptions = {
      clientId: this.c.client_id ?? `duogate-${this.d.config.node.name}`,
      keepalive: this.c.keepalive_s,
      clean: true,
      protocolVersion: 4,
      connectTimeout: 5000,
      reconnectPeriod: 0, // our own backoff below
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: `${this.base}/availability`, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    if (this.c.username) o.username = this.c.username;
    if (this.c.password !== undefined) o.password = this.c.password;
    if (this.c.ca) {
      try { o.ca = readFileSync(this.c.ca); } catch (e) {
        this.fail(`mqtt.ca ${this.c.ca}: cannot read (${(e as Error).message}): fix the path or remove mqtt.ca`);
        return null;
      }
    }
    // A client certificate (mutual TLS): both files or neither (`duogate check` says so too).
    if (this.c.cert || this.c.key) {
      if (!this.c.cert || !this.c.key) {
        const [set, missing] = this.c.cert ? ['cert', 'key'] : ['key', 'cert'];
        this.fail(`mqtt.${set} is set without mqtt.${missing}: give both the client certificate and its private key, or neither`);
        return null;
      }
      for (const f of ['cert', 'key'] as const) {
        try { o[f] = readFileSync(this.c[f]!); } catch (e) {
          this.fail(`mqtt.${f} ${this.c[f]}: cannot read (${(e as Error).message}): fix the path or remove mqtt.cert and mqtt.key`);
          return null;
        }
      }
      // tls.connect() throws (rather than failing the connection) on a file that is not PEM or a key that does
      // not belong to the certificate: find out here, where it is one more reported failure.
      const bad = clientCertProblem(o.cert as Buffer, o.key as Buffer);
      if (bad) { this.fail(`mqtt.cert ${this.c.cert} / mqtt.key ${this.c.key}: ${bad}`); return null; }
    }
    if (this.c.insecure) o.rejectUnauthorized = false;
    return o;
  }

  private connect(): void {
    if (this.stopping) return;
    const o = this.options();
    if (!o) { this.scheduleRetry(); return; }
    this.st.state = 'connecting';
    let cl: MqttClient;
    // mqtt.js builds the socket synchronously: a TLS option it cannot use throws here. Never out of a timer.
    try { cl = mqtt.connect(this.c.url, o); } catch (e) {
      this.fail(`${redact(this.c.url)}: ${(e as Error).message}`);
      this.scheduleRetry();
      return;
    }
    this.client = cl;
    cl.on('connect', () => this.onConnect(cl));
    cl.on('error', (e) => this.fail(`${redact(this.c.url)}: ${describeError(e, !!this.c.cert)}`));
    cl.on('message', (topic, payload, packet) => this.onMessage(topic, payload.toString('utf8').trim(), packet.retain));
    cl.on('close', () => {
      if (this.client !== cl) return;
      const was = this.st.state === 'connected';
      this.st.connected_since = null;
      this.stateInFlight = false;
      this.inflight = 0;
      if (was) this.d.log.warn('mqtt broker connection lost', { broker: redact(this.c.url), last_error: this.st.last_error });
      if (!this.stopping) { cl.removeAllListeners(); cl.on('error', () => {}); cl.end(true); this.client = null; this.scheduleRetry(); }
    });
  }

  private fail(msg: string): void {
    if (msg !== this.st.last_error) this.d.log.warn('mqtt telemetry error', { error: msg });
    this.st.last_error = msg;
    this.st.last_error_at = new Date().toISOString();
  }

  private scheduleRetry(): void {
    if (this.stopping || this.retryTimer) return;
    const min = this.c.backoff_min_s * 1000, max = this.c.backoff_max_s * 1000;
    this.backoffMs = this.backoffMs ? Math.min(max, this.backoffMs * 2) : min;
    const delay = Math.round(this.backoffMs * (0.75 + Math.random() * 0.5));
    this.st.state = 'backoff';
    this.st.next_retry_at = new Date(Date.now() + delay).toISOString();
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.st.next_retry_at = null; this.st.reconnects++; this.connect(); }, delay);
    this.retryTimer.unref();
  }

  private onConnect(cl: MqttClient): void {
    this.backoffMs = 0;
    this.st.state = 'connected';
    this.st.connects++;
    this.st.connected_since = new Date().toISOString();
    this.d.log.info('mqtt broker connected', { broker: redact(this.c.url), base: this.base, discovery: this.c.discovery.enabled });
    this.pub(`${this.base}/availability`, 'online', true);
    if (this.c.discovery.enabled) {
      cl.subscribe(`${this.c.discovery.prefix}/status`, { qos: 1 }, (e) => { if (e) this.fail(`subscribe ${this.c.discovery.prefix}/status: ${e.message}`); });
      this.publishDiscovery();
      // The broker's retained configs of this node: those no longer published (a network or vhid removed while
      // the daemon was stopped) are deleted. After publishDiscovery, so the current set is known.
      const own = `${this.c.discovery.prefix}/+/${discoveryNodeId(this.d.config.node.name)}/+/config`;
      cl.subscribe(own, { qos: 1 }, (e) => { if (e) this.fail(`subscribe ${own}: ${e.message} (check the broker ACL)`); });
    }
    if (this.c.commands) {
      cl.subscribe(`${this.base}/cmd/maintenance`, { qos: 1 }, (e) => { if (e) this.fail(`subscribe ${this.base}/cmd/maintenance: ${e.message} (check the broker ACL)`); });
    }
    this.publishState(true);
    const q = this.queue; this.queue = [];
    for (const ev of q) this.sendEvent(ev);
  }

  private onMessage(topic: string, payload: string, retained = false): void {
    if (this.c.discovery.enabled && retained && staleDiscovery(topic, payload, this.c.discovery.prefix, this.d.config.node.name, this.discoveryTopics)) {
      this.d.log.info('mqtt discovery entity removed', { topic, why: 'no longer in the config' });
      this.pub(topic, '', true);
      return;
    }
    if (this.c.discovery.enabled && topic === `${this.c.discovery.prefix}/status`) {
      // Home Assistant restarted: it forgets non-retained state, so send discovery and state again.
      if (payload === 'online') { this.publishDiscovery(); this.publishState(true); }
      return;
    }
    if (this.c.commands && topic === `${this.base}/cmd/maintenance`) {
      const on = ['ON', 'enter'].includes(payload) ? true : ['OFF', 'leave'].includes(payload) ? false : null;
      if (on === null) {
        this.st.commands_rejected++;
        this.d.log.warn('mqtt command rejected', { topic, payload: payload.slice(0, 64), expected: 'ON|OFF|enter|leave' });
        return;
      }
      this.st.commands_accepted++;
      this.d.log.warn('mqtt command', { topic, command: on ? 'maintenance enter' : 'maintenance leave' });
      if (!!this.d.maintenanceState() !== on) this.d.setMaintenance(on, 'mqtt');
      else this.publishState(true);
    }
  }

  /** Fire and forget; counts what is unacknowledged so a stuck broker cannot grow memory without bound. */
  private pub(topic: string, payload: string, retain: boolean, done?: (ok: boolean) => void): void {
    const cl = this.client;
    if (!cl || !cl.connected) { done?.(false); return; }
    this.inflight++;
    cl.publish(topic, payload, { qos: 1, retain }, (e) => {
      this.inflight = Math.max(0, this.inflight - 1);
      // A publish cut short by a lost connection is not the error to show: the connection's own error is.
      if (e && this.client === cl && cl.connected) this.fail(`publish ${topic}: ${e.message}`);
      done?.(!e);
    });
  }

  private publishDiscovery(): void {
    const s = this.d.status();
    const f = featureFigures(s);
    let mac: string | null = null;
    try { mac = [...native.ifInfo(this.d.config.interfaces.lan.device).mac].map((b) => b.toString(16).padStart(2, '0')).join(':'); } catch { /* no LAN NIC info */ }
    const msgs = discoveryMessages({
      discoveryPrefix: this.c.discovery.prefix, base: this.base, node: this.d.config.node.name, role: this.d.config.node.role,
      version: this.version, mac, commands: this.c.commands, expireAfter: this.c.interval_s * 3 + 10,
      vhids: ((s.vips as any[]) ?? []).map((v) => ({ vhid: v.vhid, interface: v.interface, addresses: v.addresses })),
      networks: Object.entries((s.networks as Record<string, any>) ?? {}).map(([name, x]) => ({ name, vips: Array.isArray(x?.vips) ? x.vips.length : 0 })),
      features: { configSync: f.config_in_sync !== null, stateSync: f.state_sync_ok !== null || f.states !== null, dhcp: f.dhcp_ha_state !== null || f.dhcp_leases !== null, peer: !!s.peer },
    });
    const now = new Set(msgs.filter((m) => m.payload !== '').map((m) => m.topic));
    for (const t of this.discoveryTopics) if (!now.has(t)) this.pub(t, '', true); // e.g. a removed vhid or network
    this.discoveryTopics = now;
    for (const m of msgs) this.pub(m.topic, m.payload === '' ? '' : JSON.stringify(m.payload), true);
  }

  /** Publish the state if it changed (or `force`); one in flight at a time, the newest wins. */
  private publishState(force: boolean, snapshot?: Record<string, unknown>): void {
    if (!this.client?.connected) return;
    if (this.stateInFlight) { this.stateDirty = true; return; }
    let doc: Record<string, unknown>;
    try { doc = stateDocument(snapshot ?? this.d.status(), { version: this.version, self: this.name }); } catch (e) {
      this.fail(`building the state document: ${(e as Error).message}`); return;
    }
    const { updated: _u, uptime_s: _t, adverts: _a, services: _s, ...significant } = doc;
    const digest = JSON.stringify(significant);
    if (!force && !this.stateDirty && digest === this.lastDigest) return;
    this.lastDigest = digest;
    this.stateDirty = false;
    this.stateInFlight = true;
    this.lastStatePublish = Date.now();
    this.pub(`${this.base}/state`, JSON.stringify(doc), true, (ok) => {
      this.stateInFlight = false;
      if (ok) this.st.published_states++;
      if (this.stateDirty) setImmediate(() => this.publishState(true));
    });
  }

  /** Once a second: one status snapshot for the sync-failure watch and the change check. */
  private tick(): void {
    let s: Record<string, unknown>;
    try { s = this.d.status(); } catch (e) { this.fail(`reading the status: ${(e as Error).message}`); return; }
    this.watchSync(s);
    this.publishState(false, s);
  }

  /** State/config sync failures become alarm events (and problem ON) once they last SYNC_ALARM_HOLD_MS. */
  private watchSync(s: Record<string, unknown>): void {
    const changes = this.syncWatch.update(this.d.now(), syncProblems(featureFigures(s)));
    for (const { alarm, active } of changes) {
      if (active) this.d.log.error(alarm.message, { alarm: alarm.name }); else this.d.log.warn('alarm cleared', { alarm: alarm.name });
      this.event({ type: 'alarm', source: 'telemetry', name: alarm.name, key: alarm.name, active, message: active ? alarm.message : `cleared: ${alarm.message}`, at: new Date().toISOString() });
    }
  }

  private event(ev: Record<string, unknown>): void {
    const full = { node: this.d.config.node.name, ...ev };
    if (this.client?.connected) this.sendEvent(full);
    else {
      if (this.queue.length >= EVENT_QUEUE) { this.queue.shift(); this.st.events_dropped++; }
      this.queue.push({ ...full, queued: true });
    }
    // The state changed with it: publish right behind the event.
    this.stateDirty = true;
    setImmediate(() => this.publishState(true));
  }

  private sendEvent(ev: Record<string, unknown>): void {
    if (this.inflight >= MAX_INFLIGHT) { this.st.events_dropped++; return; }
    this.pub(`${this.base}/event`, JSON.stringify(ev), false, (ok) => {
      if (ok) { this.st.published_events++; return; }
      // The connection died with the event unacknowledged: keep it for the next connection (clean sessions
      // forget in-flight messages).
      if (this.stopping) return;
      if (this.queue.length >= EVENT_QUEUE) { this.queue.shift(); this.st.events_dropped++; }
      this.queue.push({ ...ev, queued: true });
    });
  }

  async stop(graceful: boolean): Promise<void> {
    this.stopping = true;
    this.d?.off('transition', this.onTransition);
    this.d?.off('maintenance', this.onMaintenance);
    this.d?.off('alarm', this.onAlarm);
    this.d?.off('config', this.onConfig);
    for (const t of [this.retryTimer, this.periodic, this.changeTimer]) if (t) clearTimeout(t);
    const cl = this.client;
    this.client = null;
    this.st.state = 'stopped';
    if (!cl) return;
    if (!graceful || !cl.connected) { cl.end(true); return; }
    // A clean stop says `offline` itself (the broker drops the will on a clean DISCONNECT), then waits at most 1 s.
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { cl.end(true); resolve(); }, 1000);
      cl.publish(`${this.base}/availability`, 'offline', { qos: 1, retain: true }, () => {
        cl.end(false, {}, () => { clearTimeout(t); resolve(); });
      });
    });
  }

  status(): Record<string, unknown> {
    return {
      broker: redact(this.c.url),
      ...this.st,
      // Sync failures held long enough: shown by `duogate status` and the console, and (as every section's
      // alarms) in the state document's alarms/problem.
      alarms: this.syncWatch.list(),
      connected: this.st.state === 'connected',
      inflight: this.inflight,
      events_queued: this.queue.length,
      last_state_at: this.lastStatePublish ? new Date(this.lastStatePublish).toISOString() : null,
      topics: { state: `${this.base}/state`, event: `${this.base}/event`, availability: `${this.base}/availability` },
      discovery: this.c.discovery.enabled ? this.c.discovery.prefix : false,
      commands: this.c.commands,
    };
  }
}
