// The state sync feature: the node-local `statesync` section, conntrack replication over the sync link (service.ts).
import type { Config } from '../config/schema.js';
import { lazyService, type Feature } from '../feature.js';
import { stateSyncConfig, stateSyncSchema } from './config.js';

const wanted = (c: Config) => !!stateSyncConfig(c.statesync)?.enabled;

export const feature: Feature = {
  name: 'statesync',
  sections: { statesync: stateSyncSchema },
  wanted,
  start: lazyService(wanted, async (host) => {
    const [{ StateSyncService }, { linkStartFromEnv }] = await Promise.all([import('./service.js'), import('./session.js')]);
    return new StateSyncService(stateSyncConfig(host.config.statesync)!, linkStartFromEnv(process.env.DUOGATE_STATESYNC_LINK_START));
  }),
  // No live restart: a start demotes CARP until the peer's table is here (bulk_timeout_ms when the peer
  // does not answer), on the active node too, so a restart there would hand the VIPs to the peer.
  restartOnChange: false,
  figures(s) {
    // A state sync the config asks for that could not start (the runner's {running: false, error}) is not OK.
    if (s.running === false) return { state_sync_ok: 'OFF', states: null };
    if (!s.enabled) return {};
    const heard = s.peer?.last_heard_ms_ago;
    return {
      // Healthy: the peer heard within 3 s and the bulk sync did not time out.
      state_sync_ok: typeof heard === 'number' && heard <= 3000 && s.bulk?.state !== 'timeout' ? 'ON' : 'OFF',
      states: typeof s.states_table === 'number' && Number.isFinite(s.states_table) ? s.states_table : null,
    };
  },
};
