// The firewall feature: the `firewall` and `nat` sections, compiled to one nftables ruleset (service.ts).
import type { Config } from '../../config/schema.js';
import type { Feature } from '../../feature.js';
import { firewallSchema, natSchema } from './schema.js';
import { checkFirewall } from './check.js';

export const feature: Feature = {
  name: 'firewall',
  sections: { firewall: firewallSchema, nat: natSchema },
  synced: ['firewall', 'nat'],
  check: (c) => checkFirewall(c),
  // Whenever a firewall or nat section is present (an empty `firewall: {}` gives the defaults).
  wanted: (c: Config) => c.firewall !== undefined || c.nat !== undefined,
  async start(host) {
    if (!this.wanted(host.config)) return null;
    const { FirewallService } = await import('./service.js');
    const s = new FirewallService();
    await s.start(host);
    return s;
  },
};
