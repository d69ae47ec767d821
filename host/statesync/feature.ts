// The state sync feature: the node-local `statesync` section, conntrack replication over the sync link (service.ts).
import type { Config } from '../config/schema.js';
import type { Feature } from '../feature.js';
import { stateSyncConfig, stateSyncSchema } from './config.js';

export const feature: Feature = {
  name: 'statesync',
  sections: { statesync: stateSyncSchema },
  wanted: (c: Config) => !!stateSyncConfig(c.statesync)?.enabled,
  async start(host) {
    const cfg = stateSyncConfig(host.config.statesync);
    if (!cfg?.enabled) return null;
    const [{ StateSyncService }, { linkStartFromEnv }] = await Promise.all([import('./service.js'), import('./session.js')]);
    const s = new StateSyncService(cfg, linkStartFromEnv(process.env.DUOGATE_STATESYNC_LINK_START));
    s.start(host);
    return s;
  },
  figures(s) {
    if (!s.enabled) return {};
    const heard = s.peer?.last_heard_ms_ago;
    return {
      // Healthy: the peer heard within 3 s and the bulk sync did not time out.
      state_sync_ok: s.running !== false && typeof heard === 'number' && heard <= 3000 && s.bulk?.state !== 'timeout' ? 'ON' : 'OFF',
      states: typeof s.states_table === 'number' && Number.isFinite(s.states_table) ? s.states_table : null,
    };
  },
};
