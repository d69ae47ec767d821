// The DNS feature: the `dns` section, answered by unbound on the LAN VIP (service.ts).
import type { Config } from '../../config/schema.js';
import type { Feature } from '../../feature.js';
import { dnsSchema } from './schema.js';

export const feature: Feature = {
  name: 'dns',
  sections: { dns: dnsSchema },
  synced: ['dns'],
  wanted: (c: Config) => c.dns !== undefined,
  async start(host) {
    if (!this.wanted(host.config)) return null;
    const { DnsService } = await import('./service.js');
    const s = new DnsService();
    await s.start(host);
    return s;
  },
};
