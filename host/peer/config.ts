// The `peer:` config section: the authenticated heartbeat between the two nodes (host/peer/health.ts). Its key
// also authenticates CARP between the pair (host/daemon/pair.ts).
// Both nodes need the same key; the heartbeat runs between interfaces.sync.address and interfaces.sync.peer.
import type { Finding } from '../config/check.js';
import type { Config } from '../config/schema.js';
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
    key: { type: 'string', minLength: 16, secret: true, description: 'shared HMAC-SHA256 key, the same on both nodes' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 7201 },
    interval_ms: { type: 'integer', minimum: 100, maximum: 10000, default: 1000 },
    dead_after: { type: 'integer', minimum: 2, maximum: 30, default: 3 },
    lan_path: { type: 'boolean', default: true },
  },
} as const;

/** `duogate check`: what the heartbeat needs beyond the schema. */
export function checkPeer(c: Config, peer?: Config): Finding[] {
  const p = c.peer as PeerConfig | undefined;
  if (!p) return [];
  const out: Finding[] = [];
  if (!c.interfaces.sync.peer) out.push({ level: 'error', field: 'interfaces.sync.peer', message: 'the peer heartbeat (peer:) sends to this address: set it to the other node\'s sync address' });
  if (p.lan_path !== false && !c.interfaces.lan.peer) out.push({ level: 'warning', field: 'interfaces.lan.peer', message: 'not set: the heartbeat runs on the sync link only (peer.lan_path needs the other node\'s LAN address)' });
  const q = peer?.peer as PeerConfig | undefined;
  if (peer && !q) out.push({ level: 'warning', field: 'peer', message: 'the other node has no peer: section: neither node gets split-brain or sync-link alarms until both have it' });
  if (q && q.key !== p.key) out.push({ level: 'error', field: 'peer.key', message: 'differs from the other node\'s: every heartbeat would be dropped as bad_hmac' });
  if (q && (q.port ?? 7201) !== (p.port ?? 7201)) out.push({ level: 'error', field: 'peer.port', message: `${p.port} here, ${q.port} on the other node: both must use the same port` });
  return out;
}
