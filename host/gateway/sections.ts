// The gateway's config sections (firewall, nat, dhcp, dns) and its `duogate check` findings, registered with
// the config loader through host/config/sections.ts.
import { extraChecks } from '../config/check.js';
import { firewallSchema, natSchema } from './firewall/schema.js';
import { checkFirewall } from './firewall/check.js';

export const gatewaySections: Record<string, object> = {
  firewall: firewallSchema,
  nat: natSchema,
};

extraChecks.push((c) => checkFirewall(c));
