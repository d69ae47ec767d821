// The firewall feature: the `firewall` and `nat` sections, compiled to one nftables ruleset (service.ts).
import type { Config } from '../../config/schema.js';
import { lazyService, type Feature } from '../../feature.js';
import { firewallSchema, natSchema } from './schema.js';
import { checkFirewall } from './check.js';

// Whenever a firewall or nat section is present (an empty `firewall: {}` gives the defaults).
const wanted = (c: Config) => c.firewall !== undefined || c.nat !== undefined;

export const feature: Feature = {
  name: 'firewall',
  sections: { firewall: firewallSchema, nat: natSchema },
  synced: ['firewall', 'nat'],
  check: (c) => checkFirewall(c),
  wanted,
  start: lazyService(wanted, async () => new (await import('./service.js')).FirewallService()),
};
