// The config sync feature: the node-local `configsync` section (service.ts). Which sections it carries is
// each feature's `synced` list (host/configsync/sections.ts reads them).
import type { Config } from '../config/schema.js';
import { lazyService, type Feature } from '../feature.js';
import { configSyncSchema } from './schema.js';
import { checkConfigSync } from './check.js';
import { syncable } from './sections.js';

const onOff = (b: boolean) => (b ? 'ON' : 'OFF') as 'ON' | 'OFF';

const wanted = (c: Config) => !!c.configsync;

export const feature: Feature = {
  name: 'configsync',
  // Built when the loader asks: the names it accepts come from the other features' lists.
  sections: { configsync: () => configSyncSchema(syncable()) },
  check: checkConfigSync,
  wanted,
  // A secondary starts from the sections it last received from the primary, not the file's (service.ts bootConfig).
  async bootConfig(c, log) {
    if (!wanted(c)) return c;
    const { bootConfig } = await import('./service.js');
    return bootConfig(c, log);
  },
  start: lazyService(wanted, async () => new (await import('./service.js')).ConfigSyncService()),
  figures(s) {
    if (typeof s.peer?.state === 'string') return { config_in_sync: onOff(s.peer.state === 'in_sync') }; // primary: the secondary is up to date
    if (typeof s.drift === 'boolean') return { config_in_sync: onOff(!s.drift) }; // secondary: no local edits beside the primary's
    return {};
  },
};
