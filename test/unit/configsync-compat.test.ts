// What a primary pushes to a secondary on a release before named networks (host/configsync/compat.ts), and the
// rolling-upgrade test's refusal to run without the previous release's commit (test/e2e/old-release.ts).
import t from 'tap';
import { forPeer, peerNetworks, PRE_NETWORKS_NETS, PRE_NETWORKS_SECTIONS } from '../../host/configsync/compat.js';
import { oldRelease } from '../e2e/old-release.js';

const sections = () => ({
  vips: [
    { interface: 'lan', vhid: 1, address: '192.168.1.1/24', password: 'p', advbase: 1, advskew: 100 },
    { interface: 'wan', vhid: 2, address: '203.0.113.1/24', password: 'p', advbase: 1, advskew: 100 },
    { interface: 'guest', vhid: 3, address: '192.168.20.1/24', password: 'p', advbase: 1, advskew: 100 },
  ],
  firewall: { aliases: {}, rules: { lan: [{ action: 'pass' }], guest: [{ action: 'block' }], wan: [] } },
  nat: {
    outbound: { mode: 'hybrid', rules: [{ interface: 'wan', translation: 'vip' }, { interface: 'iot', translation: 'vip' }] },
    port_forwards: [{ interface: 'guest', protocol: 'tcp', destination_port: 80, target: '192.168.20.5' }, { interface: 'wan', protocol: 'tcp', destination_port: 443, target: '192.168.1.5' }],
  },
  dhcp: { range: { from: '192.168.1.150', to: '192.168.1.199' }, networks: { guest: { range: { from: '192.168.20.150', to: '192.168.20.199' } } } },
});

t.test('a peer that names its networks is current; one that does not predates named networks', async (t) => {
  t.same(peerNetworks({ schema: 1, networks: ['wan', 'lan', 'guest', 'sync'], sections: ['vips', 'dhcp6'] }), { nets: ['wan', 'lan', 'guest', 'sync'], sections: ['vips', 'dhcp6'], release: 'current' });
  t.same(peerNetworks({ schema: 1, networks: ['wan', 'lan', 'sync'] }).sections, null, 'a current peer that does not list its sections takes every one');
  t.same(peerNetworks({ schema: 1, version: '0.1.0' }), { nets: PRE_NETWORKS_NETS, sections: PRE_NETWORKS_SECTIONS, release: 'before named networks' });
  t.same(peerNetworks({ networks: 'lan' }).release, 'before named networks', 'a malformed list is not trusted');
});

t.test('forPeer leaves out every part of the networks the peer lacks, and says what', async (t) => {
  const input = sections();
  const { sections: out, omitted } = forPeer(input, PRE_NETWORKS_NETS) as { sections: any; omitted: string[] };
  t.same(out.vips.map((v: any) => v.vhid), [1, 2]);
  t.same(Object.keys(out.firewall.rules), ['lan', 'wan']);
  t.same(out.nat.outbound.rules.map((r: any) => r.interface), ['wan']);
  t.same(out.nat.port_forwards.map((r: any) => r.interface), ['wan']);
  t.same(out.dhcp, { range: { from: '192.168.1.150', to: '192.168.1.199' } });
  t.same(omitted, ['vips: vhid 3 on guest', 'firewall.rules.guest', 'nat.outbound.rules[1] on iot', 'nat.port_forwards[0] on guest', 'dhcp.networks.guest']);
  t.same(input, sections(), 'the input is not changed');
  t.same(forPeer(input, ['wan', 'lan', 'guest', 'iot', 'sync']), { sections: input, omitted: [] }, 'nothing left out for a peer with every network');
});

t.test('a section the peer does not sync (dhcp6, newer than a pre-networks release) is left out whole', async (t) => {
  const { sections: out, omitted } = forPeer({ vips: [], dhcp6: { ranges: [] } }, PRE_NETWORKS_NETS, PRE_NETWORKS_SECTIONS);
  t.same(out, { vips: [] });
  t.same(omitted, ['dhcp6 (a section the peer does not sync)']);
});

t.test('a dhcp section with no LAN scope is not sent to a pre-networks peer', async (t) => {
  const { sections: out, omitted } = forPeer({ dhcp: { networks: { guest: { range: { from: '192.168.20.150', to: '192.168.20.199' } } } } }, PRE_NETWORKS_NETS);
  t.notOk('dhcp' in out, 'the section is not in the push (the peer keeps its own)');
  t.match(omitted, ['dhcp.networks.guest', /^dhcp \(no LAN scope/]);
});

t.test('the rolling-upgrade test fails, naming what to do, when the clone lacks the previous release', async (t) => {
  t.throws(() => oldRelease('0'.repeat(40)), /DG_ERR_OLD_RELEASE: commit 0{40} .*not in the clone.*git fetch --unshallow/);
});
