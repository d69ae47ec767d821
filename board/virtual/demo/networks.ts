// The guest network's part of the demo (issue #14): from the guest client namespace, a lease with router and
// DNS = the guest VIP, DNS and the internet (the WAN server, seen from the WAN VIP) through the pair before
// and after the power-off, the LAN never reached, and the guest's own outage at the takeover (10 ms pings).
// JSON: networks.guest.{dhcp_ok, dns_ok, internet_ok, reaches_lan, takeover_ms}.
import type { DemoPlugin } from './plugin.js';
import { TEST_ZONE, WHOAMI_PORT } from './gateway.js';
import { GUEST, GuestProbes, type GuestLease } from '../networks.js';
import { Pinger } from '../pinger.js';

export function networksPlugin(): DemoPlugin {
  let probes: GuestProbes;
  let pinger: Pinger;
  let lease: GuestLease | null = null;
  const dns: string[][] = [];
  const internet: (string | null)[] = [];
  const lan: boolean[] = [];
  let offAt = 0;
  let takeover: number | null = null;
  let off = false;
  const look = async () => {
    dns.push(await probes.dns(TEST_ZONE.name));
    internet.push(await probes.tcp('203.0.113.10', WHOAMI_PORT));
    lan.push(await probes.ping('192.168.1.100'), await probes.ping('192.168.1.1'));
  };
  return {
    name: 'networks',
    async setup(ctx) {
      // A story told with configs that leave the guest network out has no guest figures.
      if (!(await ctx.status('primary')).networks?.guest) { off = true; return; }
      probes = new GuestProbes(ctx.board);
      probes.startDhcpClient();
      lease = await probes.waitLease(15_000);
      await look();
      pinger = new Pinger(ctx.board, 10, '203.0.113.10', 'guest');
      pinger.start(120_000);
      ctx.say(`guest network: lease ${lease?.ip ?? 'NONE'} (router ${lease?.router}, dns ${lease?.dns}); DNS -> ${dns[0]!.join(',') || 'NO ANSWER'}; ` +
        `server sees ${internet[0] ?? 'NO CONNECTION'}; LAN reached: ${lan.some(Boolean)}`);
    },
    async beforePowerOff() { offAt = performance.timeOrigin + performance.now(); },
    async afterTakeover(ctx) {
      if (off) return;
      takeover = pinger.outage(offAt, performance.timeOrigin + performance.now()).gap_ms;
      await look();
      ctx.say(`guest network after takeover: outage ${takeover} ms; DNS -> ${dns[1]!.join(',') || 'NO ANSWER'}; server sees ${internet[1] ?? 'NO CONNECTION'}`);
    },
    async finish() {
      if (off) return { networks: {} };
      await pinger?.stop();
      probes?.stopDhcpClient();
      return {
        networks: {
          guest: {
            dhcp_ok: !!lease && lease.router === GUEST.vip && lease.dns.split(' ').includes(GUEST.vip),
            dns_ok: dns.length === 2 && dns.every((a) => a.includes(TEST_ZONE.address)),
            internet_ok: internet.length === 2 && internet.every((a) => a === '203.0.113.1'),
            reaches_lan: lan.some(Boolean),
            takeover_ms: takeover,
          },
        },
      };
    },
  };
}
