// The peer feature: the node-local `peer` section, the authenticated heartbeat and pair-health alarms (health.ts).
import type { Config } from '../config/schema.js';
import type { Feature } from '../feature.js';
import { checkPeer, peerSchema, type PeerConfig } from './config.js';

export const feature: Feature = {
  name: 'peer',
  sections: { peer: peerSchema },
  check: checkPeer,
  wanted: (c: Config) => !!c.peer,
  async start(host) {
    if (!this.wanted(host.config)) return null;
    const { PeerHealth } = await import('./health.js');
    const s = new PeerHealth(host.config.peer as PeerConfig);
    s.start(host);
    return s;
  },
};
