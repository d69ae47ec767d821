// Which services the daemon runs, from the config's sections. Each feature adds itself here.
import type { Daemon } from './daemon.js';
import type { ControlServer } from '../control/server.js';
import type { Service } from './service.js';
import { ConfigSyncService } from '../configsync/service.js';
import { gatewayServices } from '../gateway/service.js';

export async function loadServices(_d: Daemon, _control: ControlServer): Promise<Service[]> {
  const out: Service[] = [];
  if (_d.config.configsync) out.push(new ConfigSyncService(_control));
  out.push(...gatewayServices(_d, _control));
  return out;
}
