// The DHCP feature: the `dhcp` section, served by Kea in HA hot-standby (service.ts).
import type { Config } from '../../config/schema.js';
import type { Feature } from '../../feature.js';
import { dhcpSchema } from './schema.js';
import { checkDhcp } from './kea.js';

export const feature: Feature = {
  name: 'dhcp',
  sections: { dhcp: dhcpSchema },
  synced: ['dhcp'],
  check: (c) => checkDhcp(c),
  wanted: (c: Config) => c.dhcp !== undefined,
  async start(host) {
    if (!this.wanted(host.config)) return null;
    const { DhcpService } = await import('./service.js');
    const s = new DhcpService();
    await s.start(host);
    return s;
  },
  figures: (s) => ({
    dhcp_ha_state: typeof s.ha_state === 'string' ? s.ha_state : null,
    dhcp_leases: typeof s.leases === 'number' && Number.isFinite(s.leases) ? s.leases : null,
  }),
};
