// The DHCP feature: the `dhcp` section, served by Kea in HA hot-standby (service.ts).
import type { Config } from '../../config/schema.js';
import { lazyService, type Feature } from '../../feature.js';
import { dhcpSchema } from './schema.js';
import { checkDhcp } from './kea.js';

const wanted = (c: Config) => c.dhcp !== undefined;

export const feature: Feature = {
  name: 'dhcp',
  sections: { dhcp: dhcpSchema },
  synced: ['dhcp'],
  check: (c) => checkDhcp(c),
  wanted,
  start: lazyService(wanted, async () => new (await import('./service.js')).DhcpService()),
  figures: (s) => ({
    dhcp_ha_state: typeof s.ha_state === 'string' ? s.ha_state : null,
    dhcp_leases: typeof s.leases === 'number' && Number.isFinite(s.leases) ? s.leases : null,
  }),
};
