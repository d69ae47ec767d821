// Every feature beside CARP, in start order; the only module that imports them all. The config loader,
// `duogate check`, config sync, the daemon, telemetry and the console read this list (host/feature.ts says
// what a feature is). Adding a feature: its folder with a feature.ts, and one line here.
import type { Feature } from './feature.js';
import { feature as firewall } from './gateway/firewall/feature.js';
import { feature as dhcp } from './gateway/dhcp/feature.js';
import { feature as dhcp6 } from './gateway/dhcp6/feature.js';
import { feature as dns } from './gateway/dns/feature.js';
import { feature as configsync } from './configsync/feature.js';
import { feature as peer } from './peer/feature.js';
import { feature as statesync } from './statesync/feature.js';
import { feature as mqtt } from './telemetry/feature.js';
import { feature as ra } from './ra/feature.js';
import { feature as wan } from './wan/feature.js';
import { feature as ipv6 } from './ipv6/feature.js';

export const features: readonly Feature[] = [
  // The firewall first: the others' traffic depends on its ruleset.
  firewall,
  // Early: a stored WAN lease's address is pinned while CARP still waits as BACKUP (its adverts must be signed
  // over the address the peer signs over). Its lease events go to the peer feature, running long before a takeover.
  wan,
  dhcp, dhcp6, dns,
  // After the firewall: the sync server must not accept a connection before the first ruleset is loaded
  // (a connection older than conntrack's first rules is "invalid" and dropped mid-request).
  configsync,
  peer, statesync, mqtt,
  // After the firewall: IPv6 forwarding starts under its ruleset.
  ipv6,
  // After the firewall (router solicitations pass it); it follows CARP transitions only.
  ra,
];
