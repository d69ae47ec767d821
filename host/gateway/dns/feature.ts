// The DNS feature: the `dns` section, answered by unbound on the LAN VIP (service.ts).
import type { Config } from '../../config/schema.js';
import { lazyService, type Feature } from '../../feature.js';
import { dnsSchema } from './schema.js';

const wanted = (c: Config) => c.dns !== undefined;

export const feature: Feature = {
  name: 'dns',
  sections: { dns: dnsSchema },
  synced: ['dns'],
  wanted,
  start: lazyService(wanted, async () => new (await import('./service.js')).DnsService()),
};
