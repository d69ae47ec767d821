// The demo's feature plugins, in the order their hooks run.
import type { DemoPlugin } from './plugin.js';
import { configSyncPlugin } from './configsync.js';
import { gatewayPlugin } from './gateway.js';
import { telemetryPlugin } from './telemetry.js';
import { statesyncPlugin } from './statesync.js';
import { networksPlugin } from './networks.js';
import { ipv6Plugin } from './ipv6.js';

export const plugins: DemoPlugin[] = [gatewayPlugin(), configSyncPlugin(), telemetryPlugin(), statesyncPlugin(), networksPlugin(), ipv6Plugin()];
