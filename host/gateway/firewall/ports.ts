// Fixed ports of duogate's own traffic between the two sync addresses. Other features import these, and the
// firewall opens exactly these on the sync link (see docs/gateway.md "Sync rule").
export const SYNC_PORTS = {
  /** Connection-state sync (state-sync feature). */
  statesync: { proto: 'udp', port: 7200 },
  /** Peer heartbeat over the sync link. */
  heartbeat: { proto: 'udp', port: 7201 },
  /** Config sync (HTTPS). */
  configsync: { proto: 'tcp', port: 7443 },
  /** Kea DHCPv4 HA peer traffic (Kea's own HTTP listener on the sync address). */
  kea_ha: { proto: 'tcp', port: 8001 },
} as const;

/** CARP is IP protocol 112. */
export const CARP_PROTO = 112;
