// The `statesync:` config section: its type, JSON Schema (the statesync feature: feature.ts) and defaults.
export interface StateSyncConfig {
  /** false: the section is kept but nothing is replicated (the failover test's control run). */
  enabled: boolean;
  /** Shared secret for HMAC-SHA256 on every sync datagram (same on both nodes, at least 16 characters). */
  key: string;
  /** UDP port on the sync link (both nodes). */
  port: number;
  /** Table capacity in states (rounded up to a power of two); set it to nf_conntrack_max or more. */
  capacity: number;
  /** Give up waiting for the peer's bulk after this long and stop demoting CARP (a dead peer must not pin us). */
  bulk_timeout_ms: number;
  /** Injected TCP states are BE_LIBERAL; this long after becoming active they are made strict again. */
  liberal_ms: number;
  /** Kernel event socket buffer (SO_RCVBUFFORCE), bytes. */
  event_buffer: number;
  /** The active node re-reads its table this often (s) to refresh timeouts on the peer; 0 = never. */
  refresh_s: number;
  /** Received states waiting for the kernel, at most (48 bytes each); past it the peer is held back. */
  backlog_max: number;
  /** Conntrack zones a received state may carry (duogate's ruleset uses only zone 0). */
  zones: number[];
  /** Marks a received state may carry: those the pair's ruleset sets (duogate's generated ruleset sets none). */
  marks: number[];
}

export const stateSyncDefaults: Omit<StateSyncConfig, 'key'> = {
  enabled: true, port: 7200, capacity: 262144, bulk_timeout_ms: 15000, liberal_ms: 5000, event_buffer: 64 * 1024 * 1024, refresh_s: 30, backlog_max: 524288, zones: [0], marks: [0],
};

export const stateSyncSchema = {
  type: 'object', additionalProperties: false, required: ['key'],
  properties: {
    enabled: { type: 'boolean', default: true },
    key: { type: 'string', minLength: 16, secret: true, description: 'HMAC-SHA256 key for the sync link, identical on both nodes' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 7200 },
    // The core's memory is capped at 64 MiB (asconfig maximumMemory): 524288 slots take 36 MiB.
    capacity: { type: 'integer', minimum: 1024, maximum: 524288, default: 262144 },
    bulk_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000, default: 15000 },
    liberal_ms: { type: 'integer', minimum: 0, maximum: 600000, default: 5000 },
    event_buffer: { type: 'integer', minimum: 65536, maximum: 1073741824, default: 67108864 },
    refresh_s: { type: 'integer', minimum: 0, maximum: 3600, default: 30 },
    backlog_max: { type: 'integer', minimum: 1024, maximum: 4194304, default: 524288 },
    zones: { type: 'array', maxItems: 8, uniqueItems: true, items: { type: 'integer', minimum: 0, maximum: 65535 }, default: [0], description: 'conntrack zones a state from the peer may carry' },
    marks: { type: 'array', maxItems: 8, uniqueItems: true, items: { type: 'integer', minimum: 0, maximum: 4294967295 }, default: [0], description: 'conntrack marks a state from the peer may carry (those your ruleset sets)' },
  },
} as const;

export function stateSyncConfig(raw: unknown): StateSyncConfig | null {
  if (!raw || typeof raw !== 'object') return null;
  return { ...stateSyncDefaults, ...(raw as Partial<StateSyncConfig>) } as StateSyncConfig;
}
