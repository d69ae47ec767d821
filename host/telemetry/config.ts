// The `mqtt:` config section: where and how a node publishes its telemetry (host/telemetry/publisher.ts).
import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Finding } from '../config/check.js';
import type { Config } from '../config/schema.js';
export interface MqttConfig {
  /** Broker URL: mqtt://host:1883 or mqtts://host:8883 (TLS). */
  url: string;
  username?: string;
  password?: string;
  /** PEM file with the CA that signed the broker's certificate (mqtts://). */
  ca?: string;
  /** PEM file with this node's client certificate, for a broker that wants one (mutual TLS; mqtts://). */
  cert?: string;
  /** PEM file with the private key of `cert` (unencrypted). */
  key?: string;
  /** mqtts:// without verifying the broker's certificate. Only for a lab. */
  insecure: boolean;
  /** Topics are <prefix>/<node.name>/{state,event,availability}. */
  prefix: string;
  /** MQTT client id (default duogate-<node.name>); must be unique on the broker. */
  client_id?: string;
  /** The retained state is republished at least this often (and at once on every change). */
  interval_s: number;
  /** MQTT keepalive: the broker publishes the last will (`offline`) 1.5 × this after the node goes silent. */
  keepalive_s: number;
  /** Reconnect backoff: first delay and cap, seconds (doubling, with jitter). */
  backoff_min_s: number;
  backoff_max_s: number;
  /** Home Assistant MQTT discovery. */
  discovery: { enabled: boolean; prefix: string };
  /** Accept maintenance enter/leave on <prefix>/<node>/cmd/maintenance. Off by default: give that topic its
   * own ACL on the broker (only the operator may publish to it). */
  commands: boolean;
}

const topicPart = '^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,63}$';

export const mqttSchema = {
  type: 'object', additionalProperties: false, required: ['url'],
  properties: {
    url: { type: 'string', secret: 'url', pattern: '^(mqtt|mqtts|tcp|ssl)://[^\\s/]+(:\\d+)?/?$', description: 'mqtt://host:1883 or mqtts://host:8883' },
    username: { type: 'string', minLength: 1 },
    password: { type: 'string', secret: true },
    ca: { type: 'string', minLength: 1 },
    cert: { type: 'string', minLength: 1 },
    key: { type: 'string', minLength: 1, secret: false, description: 'path of the PEM key file (the file is the secret, not its path)' },
    insecure: { type: 'boolean', default: false },
    prefix: { type: 'string', pattern: topicPart, default: 'duogate' },
    client_id: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    interval_s: { type: 'integer', minimum: 1, maximum: 3600, default: 15 },
    keepalive_s: { type: 'integer', minimum: 1, maximum: 600, default: 3 },
    backoff_min_s: { type: 'number', minimum: 0.1, maximum: 60, default: 1 },
    backoff_max_s: { type: 'number', minimum: 1, maximum: 3600, default: 30 },
    discovery: {
      type: 'object', additionalProperties: false, default: {},
      properties: { enabled: { type: 'boolean', default: true }, prefix: { type: 'string', pattern: topicPart, default: 'homeassistant' } },
    },
    commands: { type: 'boolean', default: false },
  },
} as const;

/** Why a client certificate and key cannot be used together (not PEM, or a key of another certificate), or null. */
export function clientCertProblem(cert: Buffer, key: Buffer): string | null {
  try { createSecureContext({ cert, key }); return null; } catch (e) {
    const why = String((e as Error).message).replace(/^error:[0-9A-F]+:/, '');
    return `not a usable client certificate and private key (${why}): give the PEM certificate and the unencrypted PEM key that belongs to it`;
  }
}

/** `duogate check`: files and combinations the schema cannot see. */
export function checkMqtt(c: Config): Finding[] {
  const m = c.mqtt as MqttConfig | undefined;
  if (!m) return [];
  const out: Finding[] = [];
  const tls = /^(mqtts|ssl):/.test(m.url);
  if (m.ca && !existsSync(m.ca)) out.push({ level: 'error', field: 'mqtt.ca', message: `${m.ca} does not exist: give the PEM file of the CA that signed the broker's certificate` });
  if (m.ca && !tls) out.push({ level: 'warning', field: 'mqtt.ca', message: 'set, but the url is not mqtts://: the connection is not encrypted and the CA is unused' });
  if (m.cert && !m.key) out.push({ level: 'error', field: 'mqtt.key', message: 'not set, but mqtt.cert is: give the PEM file with the client certificate\'s private key' });
  if (m.key && !m.cert) out.push({ level: 'error', field: 'mqtt.cert', message: 'not set, but mqtt.key is: give the PEM file with the client certificate' });
  if (m.cert && !existsSync(m.cert)) out.push({ level: 'error', field: 'mqtt.cert', message: `${m.cert} does not exist: give the PEM file of this node's client certificate` });
  if (m.key && !existsSync(m.key)) out.push({ level: 'error', field: 'mqtt.key', message: `${m.key} does not exist: give the PEM file of the client certificate's private key` });
  if (m.cert && m.key && existsSync(m.cert) && existsSync(m.key)) {
    let bad: string | null;
    try { bad = clientCertProblem(readFileSync(m.cert), readFileSync(m.key)); } catch (e) { bad = `cannot read (${(e as Error).message})`; }
    if (bad) out.push({ level: 'error', field: 'mqtt.key', message: bad });
  }
  for (const f of ['cert', 'key'] as const) {
    if (m[f] && !tls) out.push({ level: 'warning', field: `mqtt.${f}`, message: 'set, but the url is not mqtts://: a client certificate is only sent over TLS, so it is unused' });
  }
  if (m.insecure && tls) out.push({ level: 'warning', field: 'mqtt.insecure', message: 'the broker\'s certificate is not verified: anyone on the path can read the password and fake the broker' });
  if (m.password !== undefined && !tls) out.push({ level: 'warning', field: 'mqtt.password', message: 'sent in clear text over mqtt://: prefer mqtts:// with mqtt.ca' });
  if (m.commands) out.push({ level: 'warning', field: 'mqtt.commands', message: `on: whoever may publish to ${m.prefix ?? 'duogate'}/${c.node.name}/cmd/maintenance moves the VIPs; give that topic its own ACL on the broker` });
  if ((m.backoff_min_s ?? 1) > (m.backoff_max_s ?? 30)) out.push({ level: 'error', field: 'mqtt.backoff_min_s', message: 'is larger than mqtt.backoff_max_s' });
  return out;
}
