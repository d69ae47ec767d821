// The DHCPv6 feature: the `dhcp6` section, stateful addresses on the RA's network from kea-dhcp6 in HA
// hot-standby (service.ts). The RA announces it with its M and O flags (ra.mode managed or assisted).
import type { Config } from '../../config/schema.js';
import { lazyService, type Feature } from '../../feature.js';
import { dhcp6Schema } from './schema.js';
import { checkDhcp6 } from './kea6.js';

const wanted = (c: Config) => c.dhcp6 !== undefined;

export const feature: Feature = {
  name: 'dhcp6',
  sections: { dhcp6: dhcp6Schema },
  synced: ['dhcp6'],
  check: (c) => checkDhcp6(c),
  wanted,
  start: lazyService(wanted, async () => new (await import('./service.js')).Dhcp6Service()),
};
