// Ports of duogate's own traffic between the two sync addresses. Other features import these, and the
// firewall opens exactly these on the sync link, to the peer's sync address only (docs/gateway.md "Ports each
// node opens").
import type { Config } from '../../config/schema.js';

export const SYNC_PORTS = {
  /** Connection-state sync (state-sync feature). */
  statesync: { proto: 'udp', port: 7200 },
  /** Peer heartbeat over the sync link. */
  heartbeat: { proto: 'udp', port: 7201 },
  /** Config sync (HTTPS). */
  configsync: { proto: 'tcp', port: 7443 },
  /** Kea DHCPv4 HA peer traffic (Kea's own HTTP listener on the sync address). */
  kea_ha: { proto: 'tcp', port: 8001 },
  /** Kea DHCPv6 HA peer traffic (kea-dhcp6's own listener, running only with a dhcp6 section). */
  kea6_ha: { proto: 'tcp', port: 8002 },
} as const;

/** CARP is IP protocol 112. */
export const CARP_PROTO = 112;

export type SyncService = keyof typeof SYNC_PORTS;
export interface PeerPort { name: SyncService; proto: 'udp' | 'tcp'; port: number }

/**
 * The inter-node ports as this config uses them: state sync, the heartbeat and config sync have a `port`
 * setting, so the ruleset must follow it rather than the defaults above.
 */
export function peerPorts(c: Config): PeerPort[] {
  const port = (section: string, name: SyncService): number => {
    const p = (c[section] as { port?: unknown } | undefined)?.port;
    return typeof p === 'number' ? p : SYNC_PORTS[name].port;
  };
  return [
    { name: 'statesync', proto: 'udp', port: port('statesync', 'statesync') },
    { name: 'heartbeat', proto: 'udp', port: port('peer', 'heartbeat') },
    { name: 'configsync', proto: 'tcp', port: port('configsync', 'configsync') },
    { name: 'kea_ha', proto: 'tcp', port: SYNC_PORTS.kea_ha.port },
    { name: 'kea6_ha', proto: 'tcp', port: SYNC_PORTS.kea6_ha.port },
  ];
}
