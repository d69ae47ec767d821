// The `configsync:` config section (its feature: host/configsync/feature.ts). Both nodes carry one; the
// primary pushes, the secondary listens on its sync address. Never synced itself.
export interface ConfigSyncConfig {
  username: string;
  password: string;
  port: number;
  /** Primary: the secondary's sync address (default interfaces.sync.peer). */
  peer?: string;
  /** Primary: SHA-256 fingerprint of the secondary's certificate; absent = trust on first use. */
  peer_fingerprint?: string;
  /** Primary: categories to sync (vips = carp.vips, else a top-level section name). */
  sections: string[];
  /** Revisions kept in the store. */
  history: number;
  max_body_bytes: number;
  /** Push retry backoff: first delay and cap (ms). */
  retry_min_ms: number;
  retry_max_ms: number;
  /** Primary: how often to compare the synced-sections hash with the peer (drift check), seconds. */
  check_interval_s: number;
  /** Auth failures per source address allowed in `auth_window_s` before it is refused outright. */
  auth_max_failures: number;
  auth_window_s: number;
}

const ipv4 = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';

/** The section's schema; `syncable` are the only names `sections` accepts (sections.ts syncable()). */
export const configSyncSchema = (syncable: readonly string[]) => ({
  type: 'object', additionalProperties: false, required: ['password'],
  properties: {
    username: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,32}$', default: 'duogate' },
    password: { type: 'string', minLength: 12, maxLength: 256, secret: true, description: 'shared by both nodes; at least 12 characters' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 7443 },
    peer: { type: 'string', pattern: ipv4 },
    peer_fingerprint: { type: 'string', pattern: '^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$' },
    sections: {
      type: 'array', uniqueItems: true, default: ['vips'],
      items: { type: 'string', enum: [...syncable] },
    },
    history: { type: 'integer', minimum: 2, maximum: 1000, default: 50 },
    max_body_bytes: { type: 'integer', minimum: 4096, maximum: 268435456, default: 16777216 },
    retry_min_ms: { type: 'integer', minimum: 50, maximum: 60000, default: 500 },
    retry_max_ms: { type: 'integer', minimum: 100, maximum: 3600000, default: 30000 },
    check_interval_s: { type: 'number', minimum: 1, maximum: 86400, default: 30 },
    auth_max_failures: { type: 'integer', minimum: 1, maximum: 1000, default: 5 },
    auth_window_s: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
  },
}) as const;
