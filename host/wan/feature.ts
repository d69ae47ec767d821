// The wan feature: the `wan` section and, with `mode: dhcp`, the single-address WAN (service.ts, docs/wan.md).
import type { Config } from '../config/schema.js';
import { lazyService, type Feature } from '../feature.js';
import { checkWan, wanConfig, wanSchema } from './config.js';

const wanted = (c: Config) => !!wanConfig(c);

export const feature: Feature = {
  name: 'wan',
  sections: { wan: wanSchema },
  check: checkWan,
  wanted,
  start: lazyService(wanted, async (host) => new (await import('./service.js')).WanService(wanConfig(host.config)!)),
  // A restart stops the client (sending nothing) and starts it from the stored lease: no address is lost.
  restartOnChange: true,
};
