// The gateway's config sections (firewall, nat, dhcp, dns) and its `duogate check` findings, registered with
// the config loader through host/config/sections.ts.
import { extraChecks } from '../config/check.js';
import { firewallSchema, natSchema } from './firewall/schema.js';
import { checkFirewall } from './firewall/check.js';
import { dhcpSchema } from './dhcp/schema.js';
import { checkDhcp } from './dhcp/kea.js';
import { dnsSchema } from './dns/schema.js';

export const gatewaySections: Record<string, object> = {
  firewall: firewallSchema,
  nat: natSchema,
  dhcp: dhcpSchema,
  dns: dnsSchema,
};

extraChecks.push((c) => [...checkFirewall(c), ...checkDhcp(c)]);
