// The telemetry feature: the node-local `mqtt` section, state and events to an MQTT broker (publisher.ts).
import type { Config } from '../config/schema.js';
import { lazyService, type Feature } from '../feature.js';
import { checkMqtt, mqttSchema, type MqttConfig } from './config.js';

const wanted = (c: Config) => !!c.mqtt;

export const feature: Feature = {
  name: 'mqtt',
  sections: { mqtt: mqttSchema },
  check: (c) => checkMqtt(c),
  wanted,
  start: lazyService(wanted, async (host) => new (await import('./publisher.js')).MqttTelemetry(host.config.mqtt as MqttConfig)),
  consoleText: (s, p) => `mqtt ${s.connected ? 'ok' : p.yellow(s.state ?? 'down')}`,
};
