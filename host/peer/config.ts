// The `peer:` config section: the authenticated heartbeat between the two nodes (host/peer/heartbeat.ts).
// Both nodes need the same key; the heartbeat runs between interfaces.sync.address and interfaces.sync.peer.
export interface PeerConfig {
  /** Shared HMAC-SHA256 key (both nodes). At least 16 characters; use `openssl rand -hex 32`. */
  key: string;
  /** UDP port on both nodes (default 7201). */
  port: number;
  /** Heartbeat period in ms (default 1000). A heartbeat is also sent at once on every CARP transition. */
  interval_ms: number;
  /** The peer counts as silent on a path after this many missed heartbeats (default 3). */
  dead_after: number;
  /** Also send the heartbeat to interfaces.lan.peer, so both nodes (not only the BACKUP) can tell "peer alive
   * on the LAN but the sync link is down" and the peer's view survives a dead sync link (default true). */
  lan_path: boolean;
}

export const peerSchema = {
  type: 'object', additionalProperties: false, required: ['key'],
  properties: {
    key: { type: 'string', minLength: 16, description: 'shared HMAC-SHA256 key, the same on both nodes' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 7201 },
    interval_ms: { type: 'integer', minimum: 100, maximum: 10000, default: 1000 },
    dead_after: { type: 'integer', minimum: 2, maximum: 30, default: 3 },
    lan_path: { type: 'boolean', default: true },
  },
} as const;
