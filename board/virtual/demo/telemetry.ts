// Telemetry on the virtual board: a real Mosquitto broker and a subscriber (mosquitto_sub), both in the client
// namespace on 192.168.1.100:1883, reachable by both nodes over the LAN. Used by the demo plugin below and by
// test/e2e/telemetry*.test.ts. Everything started here is stopped by PID (stop()), and the board's down()
// kills whatever is left in its namespaces.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { VirtualBoard } from '../board.js';
import type { DemoPlugin } from './plugin.js';
import { sleep } from '../wait.js';

export const BROKER = { host: '192.168.1.100', port: 1883 } as const;

/** One message as the subscriber printed it; `rx` is this machine's wall clock (epoch ms) at receipt. */
export interface Msg { rx: number; retained: boolean; topic: string; payload: string }

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
/** A new P-256 key, unencrypted (`openssl req` arguments). */
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface BrokerOptions {
  port?: number;
  /** TLS listener with a CA and a server certificate for 192.168.1.100, generated here (caFile). */
  tls?: boolean;
  /** user → password; anonymous clients are then refused. */
  users?: Record<string, string>;
  /** With `tls`: mutual TLS. The listener requires a client certificate signed by the lab CA
   * (`require_certificate true`) and takes its CN as the username (`use_identity_as_username true`). A client
   * certificate from the lab CA (clientCertFile/clientKeyFile) and one from an unrelated CA
   * (otherClientCertFile/otherClientKeyFile, for the negative case) are generated here. */
  clientCerts?: boolean;
}

export class MqttLab {
  broker: ChildProcess | null = null;
  sub: ChildProcess | null = null;
  readonly msgs: Msg[] = [];
  readonly dir: string;
  private opts: BrokerOptions = {};

  /** `name` keeps a second broker's files apart (runDir/mqtt-<name>). */
  constructor(readonly board: VirtualBoard, readonly ns: 'client' = 'client', name = '') { this.dir = path.join(board.runDir, name ? `mqtt-${name}` : 'mqtt'); }

  get port(): number { return this.opts.port ?? BROKER.port; }
  get caFile(): string { return path.join(this.dir, 'ca.pem'); }
  /** Client certificate and key signed by the lab CA (with `clientCerts`; CN duogate-client). */
  get clientCertFile(): string { return path.join(this.dir, 'client.pem'); }
  get clientKeyFile(): string { return path.join(this.dir, 'client.key'); }
  /** Client certificate and key signed by an unrelated CA: the broker must refuse it. */
  get otherClientCertFile(): string { return path.join(this.dir, 'other-client.pem'); }
  get otherClientKeyFile(): string { return path.join(this.dir, 'other-client.key'); }

  /** mosquitto_pub/sub arguments to reach this broker (TLS and the first user's credentials if set). */
  clientArgs(): string[] {
    const a = ['-h', BROKER.host, '-p', String(this.port)];
    if (this.opts.tls) a.push('--cafile', this.caFile);
    if (this.opts.tls && this.opts.clientCerts) a.push('--cert', this.clientCertFile, '--key', this.clientKeyFile);
    const u = Object.entries(this.opts.users ?? {})[0];
    if (u) a.push('-u', u[0], '-P', u[1]);
    return a;
  }

  /** Start mosquitto with its own config (listener on the client's LAN address, no persistence). */
  async startBroker(o: BrokerOptions = {}): Promise<void> {
    this.opts = o;
    mkdirSync(this.dir, { recursive: true });
    const conf = path.join(this.dir, 'mosquitto.conf');
    const lines = [`listener ${this.port} ${BROKER.host}`, 'persistence false', 'user root',
      `log_dest file ${path.join(this.dir, 'mosquitto.log')}`, 'log_type error', 'log_type warning', 'log_type notice'];
    if (o.tls) {
      this.makeCerts();
      lines.push(`cafile ${this.caFile}`, `certfile ${path.join(this.dir, 'server.pem')}`, `keyfile ${path.join(this.dir, 'server.key')}`);
      if (o.clientCerts) {
        this.makeClientCerts();
        lines.push('require_certificate true', 'use_identity_as_username true');
      }
    }
    if (o.users) {
      const pw = path.join(this.dir, 'passwd');
      writeFileSync(pw, '');
      for (const [u, p] of Object.entries(o.users)) execFileSync('mosquitto_passwd', ['-b', pw, u, p]);
      lines.push('allow_anonymous false', `password_file ${pw}`);
    } else lines.push('allow_anonymous true');
    writeFileSync(conf, lines.join('\n') + '\n');
    this.broker = this.board.spawn(this.ns, 'mosquitto', ['-c', conf], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      const r = this.board.exec(this.ns, 'mosquitto_pub', [...this.clientArgs(), '-t', 'lab/ping', '-m', 'x'], { timeoutMs: 2000 });
      if (r.status === 0) return;
      if (this.broker.exitCode !== null) throw new Error(`mosquitto exited (${this.broker.exitCode}); see ${this.dir}/mosquitto.log`);
      await sleep(100);
    }
    throw new Error(`mosquitto did not accept connections on ${BROKER.host}:${this.port} within 5 s; see ${this.dir}/mosquitto.log`);
  }

  /** A throwaway CA and a server certificate for the broker's address (files only, no network). */
  private makeCerts(): void {
    writeFileSync(path.join(this.dir, 'ext.cnf'), `subjectAltName=IP:${BROKER.host}\n`);
    this.makeCa('ca', 'duogate test CA');
    this.issue('server', 'ca', BROKER.host, 'ext.cnf');
  }

  /** A client certificate from the lab CA, and one from an unrelated CA (files only). */
  private makeClientCerts(): void {
    writeFileSync(path.join(this.dir, 'client-ext.cnf'), 'extendedKeyUsage=clientAuth\n');
    this.makeCa('other-ca', 'unrelated test CA');
    this.issue('client', 'ca', 'duogate-client', 'client-ext.cnf');
    this.issue('other-client', 'other-ca', 'duogate-client', 'client-ext.cnf');
  }

  /** A self-signed CA: <name>.key and <name>.pem in this.dir. */
  private makeCa(name: string, cn: string): void {
    const f = (n: string) => path.join(this.dir, n);
    openssl(['req', '-x509', ...EC_KEY, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '2', '-subj', `/CN=${cn}`]);
  }

  /** A key and certificate <name>.key/<name>.pem signed by CA <ca>, with the extensions in file <ext>. */
  private issue(name: string, ca: string, cn: string, ext: string): void {
    const f = (n: string) => path.join(this.dir, n);
    openssl(['req', ...EC_KEY, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(ext)]);
  }

  /** Subscribe to `topics` (retained messages arrive first); every message is kept with its receive time. */
  async subscribe(topics: string[]): Promise<void> {
    const args = [...this.clientArgs(), '-q', '1', '-v', '-F', '%U %r %t %p'];
    for (const t of topics) args.push('-t', t);
    this.sub = this.board.spawn(this.ns, 'mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: this.sub.stdout! }).on('line', (line) => {
      const m = /^(\d+)\.(\d+) ([01]) (\S+) ?(.*)$/.exec(line);
      if (m) this.msgs.push({ rx: Number(m[1]) * 1000 + Number(m[2].slice(0, 6)) / 1000, retained: m[3] === '1', topic: m[4], payload: m[5] });
    });
    await sleep(200);
  }

  /** The first message after index `from` that matches, waiting at most `ms`. */
  async waitFor(pred: (m: Msg) => boolean, ms: number, from = 0): Promise<Msg | null> {
    const end = Date.now() + ms;
    for (let i = 0; i < 10_000; i++) {
      const hit = this.msgs.slice(from).find(pred);
      if (hit) return hit;
      if (Date.now() > end) return null;
      await sleep(20);
    }
    return null;
  }

  /** The newest message on a topic (e.g. the current retained state). */
  last(topic: string): Msg | undefined {
    for (let i = this.msgs.length - 1; i >= 0; i--) if (this.msgs[i].topic === topic) return this.msgs[i];
    return undefined;
  }

  json(m: Msg | null | undefined): any { try { return m ? JSON.parse(m.payload) : null; } catch { return null; } }

  /** Stop the subscriber and the broker by PID. */
  async stop(): Promise<void> {
    for (const cp of [this.sub, this.broker]) {
      if (!cp || cp.exitCode !== null || cp.signalCode !== null) continue;
      cp.kill('SIGTERM');
      await new Promise<void>((r) => { const t = setTimeout(() => { cp.kill('SIGKILL'); r(); }, 2000); cp.once('exit', () => { clearTimeout(t); r(); }); });
    }
    this.sub = this.broker = null;
  }
}

/** The `mqtt:` and `peer:` sections the board's nodes use (also in the commented example of primary.yaml). */
export function boardTelemetryConfig(): { mqtt: Record<string, unknown>; peer: Record<string, unknown> } {
  return {
    mqtt: { url: `mqtt://${BROKER.host}:${BROKER.port}`, prefix: 'duogate', interval_s: 15, keepalive_s: 1, backoff_max_s: 2, discovery: { enabled: true, prefix: 'homeassistant' } },
    peer: { key: 'board-peer-heartbeat-key-0123456789', interval_ms: 500 },
  };
}

/**
 * Demo plugin: broker + subscriber from setup; reports
 *   mqtt_takeover_event_ms  the secondary's CARP transition to MASTER (its event's `at`, taken when the daemon
 *                           logged the transition) → the subscriber receiving that event (same wall clock);
 *   mqtt_offline_seen       the powered-off primary's availability turned `offline` (its last will), and
 *   mqtt_offline_ms         how long after the power cut that was.
 * It only measures if the demo's node configs have an `mqtt:` section pointing at this broker.
 */
export function telemetryPlugin(): DemoPlugin {
  let lab: MqttLab | null = null;
  let mark = 0;
  let cutAt = 0;
  const figures: Record<string, unknown> = {};
  return {
    name: 'telemetry',
    async setup(ctx) {
      lab = new MqttLab(ctx.board);
      await lab.startBroker();
      await lab.subscribe(['duogate/#', 'homeassistant/#']);
      const s = await ctx.status('primary');
      figures.mqtt_configured = !!s.mqtt;
      if (!s.mqtt) { ctx.say('telemetry: the demo nodes have no mqtt: section; nothing publishes'); return; }
      // The nodes were retrying with backoff while no broker ran: give them one backoff period.
      const both = await lab.waitFor(() => !!lab!.last('duogate/primary/state') && !!lab!.last('duogate/secondary/state'), 12_000);
      figures.mqtt_retained_state_seen = !!both;
      const disc = lab.msgs.filter((m) => m.topic.startsWith('homeassistant/') && m.payload !== '').length;
      ctx.say(`telemetry: subscriber sees both nodes' retained state: ${both ? 'yes' : 'NO'}; ${disc} Home Assistant discovery configs`);
    },
    async beforePowerOff() { mark = lab?.msgs.length ?? 0; cutAt = Date.now(); },
    async afterTakeover(ctx) {
      if (!lab || !figures.mqtt_configured) return;
      const ev = await lab.waitFor((m) => m.topic === 'duogate/secondary/event' && /"type":"transition"/.test(m.payload) && /"to":"MASTER"/.test(m.payload), 3000, mark);
      const e = lab.json(ev);
      if (ev && e?.at) {
        figures.mqtt_takeover_event_ms = Math.round((ev.rx - Date.parse(e.at)) * 10) / 10;
        ctx.say(`telemetry: takeover event (vhid ${e.vhid}) reached the subscriber ${figures.mqtt_takeover_event_ms} ms after the transition`);
      } else ctx.say('telemetry: NO takeover event from the secondary within 3 s');
      // keepalive 1 s: 1.5 s, plus up to 5 s until Mosquitto's next keepalive check.
      const off = await lab.waitFor((m) => m.topic === 'duogate/primary/availability' && m.payload === 'offline', 8000, mark);
      figures.mqtt_offline_seen = !!off;
      if (off) figures.mqtt_offline_ms = Math.round(off.rx - cutAt);
      ctx.say(`telemetry: powered-off primary shown offline (last will): ${off ? `yes, ${figures.mqtt_offline_ms} ms after the power cut` : 'NO'}`);
    },
    async finish() {
      await lab?.stop();
      lab = null;
      return { ...figures };
    },
  };
}
