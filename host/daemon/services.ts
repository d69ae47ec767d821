// Which services the daemon runs, from the config's sections. Each feature adds itself here.
import type { Daemon } from './daemon.js';
import type { ControlServer } from '../control/server.js';
import type { Service } from './service.js';
import { ConfigSyncService } from '../configsync/service.js';
import { gatewayServices } from '../gateway/service.js';
import { PeerHealth } from '../peer/health.js';
import type { PeerConfig } from '../peer/config.js';
import { MqttTelemetry } from '../telemetry/publisher.js';
import type { MqttConfig } from '../telemetry/config.js';
import { StateSyncService } from '../statesync/service.js';
import { stateSyncConfig } from '../statesync/config.js';
import { linkStartFromEnv } from '../statesync/session.js';

export async function loadServices(_d: Daemon, _control: ControlServer): Promise<Service[]> {
  const out: Service[] = [];
  out.push(...gatewayServices(_d, _control));
  // After the firewall: the sync server must not accept a connection before the first ruleset is loaded
  // (a connection older than conntrack's first rules is "invalid" and dropped mid-request).
  if (_d.config.configsync) out.push(new ConfigSyncService(_control));
  if (_d.config.peer) out.push(new PeerHealth(_d.config.peer as PeerConfig));
  { const ss = stateSyncConfig(_d.config.statesync); if (ss?.enabled) out.push(new StateSyncService(ss, linkStartFromEnv(process.env.DUOGATE_STATESYNC_LINK_START))); }
  if (_d.config.mqtt) out.push(new MqttTelemetry(_d.config.mqtt as MqttConfig));
  return out;
}
