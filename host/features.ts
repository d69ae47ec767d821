// Every feature beside CARP, in start order; the only module that imports them all. The config loader,
// `duogate check`, config sync, the daemon, telemetry and the console read this list (host/feature.ts says
// what a feature is). Adding a feature: its folder with a feature.ts, and one line here.
import type { Feature } from './feature.js';
import { feature as firewall } from './gateway/firewall/feature.js';
import { feature as dhcp } from './gateway/dhcp/feature.js';
import { feature as dns } from './gateway/dns/feature.js';
import { feature as configsync } from './configsync/feature.js';
import { feature as peer } from './peer/feature.js';
import { feature as statesync } from './statesync/feature.js';
import { feature as mqtt } from './telemetry/feature.js';
import { feature as ra } from './ra/feature.js';
import { feature as wan } from './wan/feature.js';

export const features: readonly Feature[] = [
  // The firewall first: the others' traffic depends on its ruleset.
  firewall, dhcp, dns,
  // After the firewall: the sync server must not accept a connection before the first ruleset is loaded
  // (a connection older than conntrack's first rules is "invalid" and dropped mid-request).
  configsync,
  peer, statesync, mqtt,
  // After the firewall (router solicitations pass it); it follows CARP transitions only.
  ra,
  // After peer: the lease it carries to the other node is emitted from the start.
  wan,
];
