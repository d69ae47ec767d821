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
  // The stored lease's address before CARP starts: the first advert is signed over the address the peer signs over.
  async bootConfig(c, log) {
    const w = wanConfig(c);
    if (!w) return c;
    try {
      const [{ LeaseStore }, { native }, { expiresAt }, { leasedConfig }] = await Promise.all([
        import('./store.js'), import('../io/native.js'), import('./dhcp/machine.js'), import('./service.js')]);
      const now = native.nowMs();
      const { lease } = new LeaseStore(c.state_dir).load(now);
      return lease && expiresAt(lease) > now ? leasedConfig(c, w.vhid, lease) : c;
    } catch (e) {
      log.warn('stored WAN lease not read at boot: starting from the configured address', { err: e });
      return c;
    }
  },
  start: lazyService(wanted, async (host) => new (await import('./service.js')).WanService(wanConfig(host.config)!)),
  // A restart stops the client (sending nothing) and starts it from the stored lease: no address is lost.
  restartOnChange: true,
};
