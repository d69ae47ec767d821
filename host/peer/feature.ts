// The peer feature: the node-local `peer` section, the authenticated heartbeat and pair-health alarms (health.ts).
import type { Config } from '../config/schema.js';
import { lazyService, type Feature } from '../feature.js';
import { checkPeer, peerSchema, type PeerConfig } from './config.js';

const wanted = (c: Config) => !!c.peer;

export const feature: Feature = {
  name: 'peer',
  sections: { peer: peerSchema },
  check: checkPeer,
  wanted,
  start: lazyService(wanted, async (host) => new (await import('./health.js')).PeerHealth(host.config.peer as PeerConfig)),
  // Stopping and starting the heartbeat touches no VIP: a changed key, port or interval takes effect at once.
  restartOnChange: true,
};
