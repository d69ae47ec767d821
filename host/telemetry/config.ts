// The `mqtt:` config section: where and how a node publishes its telemetry (host/telemetry/publisher.ts).
import { existsSync } from 'node:fs';
import { extraChecks, type Finding } from '../config/check.js';
import type { Config } from '../config/schema.js';
export interface MqttConfig {
  /** Broker URL: mqtt://host:1883 or mqtts://host:8883 (TLS). */
  url: string;
  username?: string;
  password?: string;
  /** PEM file with the CA that signed the broker's certificate (mqtts://). */
  ca?: string;
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
    url: { type: 'string', pattern: '^(mqtt|mqtts|tcp|ssl)://[^\\s/]+(:\\d+)?/?$', description: 'mqtt://host:1883 or mqtts://host:8883' },
    username: { type: 'string', minLength: 1 },
    password: { type: 'string' },
    ca: { type: 'string', minLength: 1 },
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

/** `duogate check`: files and combinations the schema cannot see. */
export function checkMqtt(c: Config): Finding[] {
  const m = c.mqtt as MqttConfig | undefined;
  if (!m) return [];
  const out: Finding[] = [];
  const tls = /^(mqtts|ssl):/.test(m.url);
  if (m.ca && !existsSync(m.ca)) out.push({ level: 'error', field: 'mqtt.ca', message: `${m.ca} does not exist: give the PEM file of the CA that signed the broker's certificate` });
  if (m.ca && !tls) out.push({ level: 'warning', field: 'mqtt.ca', message: 'set, but the url is not mqtts://: the connection is not encrypted and the CA is unused' });
  if (m.insecure && tls) out.push({ level: 'warning', field: 'mqtt.insecure', message: 'the broker\'s certificate is not verified: anyone on the path can read the password and fake the broker' });
  if (m.password !== undefined && !tls) out.push({ level: 'warning', field: 'mqtt.password', message: 'sent in clear text over mqtt://: prefer mqtts:// with mqtt.ca' });
  if (m.commands) out.push({ level: 'warning', field: 'mqtt.commands', message: `on: whoever may publish to ${m.prefix ?? 'duogate'}/${c.node.name}/cmd/maintenance moves the VIPs; give that topic its own ACL on the broker` });
  if ((m.backoff_min_s ?? 1) > (m.backoff_max_s ?? 30)) out.push({ level: 'error', field: 'mqtt.backoff_min_s', message: 'is larger than mqtt.backoff_max_s' });
  return out;
}
extraChecks.push(checkMqtt);
