// IPv6 routing on the node: forwarding, and the default route via the WAN's upstream IPv6 router. Both nodes
// keep them (a BACKUP forwards nothing: hosts send to the VIPs' MAC), so a takeover changes no route.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { netDevice } from '../config/schema.js';
import type { FeatureHost, Startable } from '../feature.js';
import { hasIpv6 } from '../config/ipv6.js';

const FORWARDING = '/proc/sys/net/ipv6/conf/all/forwarding';

export class Ipv6Service implements Startable {
  readonly name = 'ipv6';
  private host: FeatureHost | null = null;
  private route: string | null = null;
  private routeError: string | null = null;
  private chain: Promise<void> = Promise.resolve();
  private readonly onConfig = (next: Config) => this.apply(next);

  start(host: FeatureHost): void {
    this.host = host;
    host.on('config', this.onConfig);
    this.apply(host.config);
  }

  /** Forwarding on while an IPv6 VIP is configured; the default route follows interfaces.wan.gateway6. */
  private apply(c: Config): void {
    if (hasIpv6(c)) {
      try { writeFileSync(FORWARDING, '1'); } catch (e) { this.host?.log.error('IPv6 forwarding not turned on', { path: FORWARDING, err: String(e) }); }
    }
    const via = c.interfaces.wan.gateway6 ?? null;
    const dev = netDevice(c.interfaces.wan);
    const key = via ? `${via}%${dev}` : null;
    if (key === this.route) return;
    const args = via ? ['-6', 'route', 'replace', 'default', 'via', via, 'dev', dev] : ['-6', 'route', 'del', 'default', 'dev', dev];
    const had = this.route;
    this.route = key;
    // One at a time, in order: a later change must not land before an earlier one.
    this.chain = this.chain.then(() => new Promise<void>((done) => {
      execFile('ip', args, { timeout: 10_000 }, (err, _o, stderr) => {
        const msg = err ? (stderr.trim() || String(err)) : null;
        if (via) {
          this.routeError = msg;
          if (msg) this.host?.log.error('IPv6 default route not set', { via, dev, err: msg, code: 'DG_ERR_ROUTE6' });
          else this.host?.log.info('IPv6 default route', { via, dev });
        } else if (had) this.host?.log.info('IPv6 default route removed', { dev });
        done();
      });
    }));
  }

  stop(): void { this.host?.off('config', this.onConfig); }

  status(): Record<string, unknown> {
    let forwarding: boolean | null = null;
    try { forwarding = readFileSync(FORWARDING, 'utf8').trim() === '1'; } catch { /* no IPv6 in this kernel */ }
    return { forwarding, default_route_via: this.route?.split('%')[0] ?? null, route_error: this.routeError };
  }
}
