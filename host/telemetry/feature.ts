// The telemetry feature: the node-local `mqtt` section, state and events to an MQTT broker (publisher.ts).
import type { Config } from '../config/schema.js';
import type { Feature } from '../feature.js';
import { checkMqtt, mqttSchema, type MqttConfig } from './config.js';

export const feature: Feature = {
  name: 'mqtt',
  sections: { mqtt: mqttSchema },
  check: (c) => checkMqtt(c),
  wanted: (c: Config) => !!c.mqtt,
  async start(host) {
    if (!this.wanted(host.config)) return null;
    const { MqttTelemetry } = await import('./publisher.js');
    const s = new MqttTelemetry(host.config.mqtt as MqttConfig);
    s.start(host);
    return s;
  },
  consoleText: (s, p) => `mqtt ${s.connected ? 'ok' : p.yellow(s.state ?? 'down')}`,
};
