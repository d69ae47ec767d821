// `duogate check` findings for the configsync section: on one node, and across the pair (--peer).
import type { Config } from '../config/schema.js';
import type { Finding } from '../config/check.js';
import type { ConfigSyncConfig } from './schema.js';

export function checkConfigSync(c: Config, peer?: Config): Finding[] {
  const out: Finding[] = [];
  const cs = c.configsync as ConfigSyncConfig | undefined;
  if (!cs) return out;
  if (c.node.role === 'primary' && !cs.peer && !c.interfaces.sync.peer) {
    out.push({ level: 'error', field: 'configsync.peer', message: 'not set and interfaces.sync.peer is not set either: the primary needs the secondary\'s sync address' });
  }
  if (c.node.role === 'primary' && !cs.peer_fingerprint) {
    out.push({ level: 'warning', field: 'configsync.peer_fingerprint', message: 'not set: the secondary\'s certificate is trusted on first use (see `duogate status`; pin it here to be sure)' });
  }
  const pc = peer?.configsync as ConfigSyncConfig | undefined;
  if (peer && !pc) out.push({ level: 'error', field: 'configsync', message: 'the peer has no configsync section: both nodes need one (same username and password)' });
  if (pc) {
    if (pc.username !== cs.username || pc.password !== cs.password) out.push({ level: 'error', field: 'configsync.password', message: 'username or password differs from the peer\'s: the secondary would refuse every push' });
    if (pc.port !== cs.port) out.push({ level: 'error', field: 'configsync.port', message: `${cs.port} here, ${pc.port} on the peer: the primary connects to its own configsync.port` });
  }
  return out;
}
