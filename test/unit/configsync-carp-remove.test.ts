// Live reconfiguration in the core: removing a vhid. A removed MASTER must release its VIPs and bow out
// (so the peer takes over within a round trip), the others must not notice, and a re-added vhid starts
// as BACKUP without restarting the node.
import t from 'tap';
import { Core } from '../../host/core/core.js';

function node(): Core {
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setLinkAddr(0, '192.168.1.2');
  c.setLinkAddr(1, '203.0.113.2');
  c.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 0, password: 'a', vips: ['192.168.1.1'] });
  c.addVhid({ vhid: 2, link: 1, advbase: 1, advskew: 0, password: 'b', vips: ['203.0.113.1'] });
  c.start(0);
  c.drain();
  return c;
}

t.test('removing a MASTER vhid releases its VIPs, bows out, and leaves the other vhid alone', async (t) => {
  const c = node();
  c.handleTimeout(3100); // master-down timers expire: both vhids become MASTER
  c.drain();
  t.same(c.vhidStatus().map((v) => v.state), ['MASTER', 'MASTER']);
  t.ok(c.removeVhid(3200, 1, 0), 'removed');
  const acts = c.drain();
  // The state record first (the host logs the change before the VIPs move), then release, then the bow-out.
  t.same(acts.map((a) => a.type), ['state', 'release', 'advert'], 'state change, VIPs released, then the bow-out advert');
  t.match(acts[0], { type: 'state', vhid: 1, from: 'MASTER', to: 'INIT', why: 'removed from the config' });
  t.equal(acts[1].vhid, 1, 'vhid 1 releases its VIPs');
  const adv = acts[2] as { type: 'advert'; bowOut: boolean; payload: Uint8Array };
  t.ok(adv.bowOut, 'the advert is a bow-out');
  t.equal(adv.payload[5], 255, 'bow-out advbase 255'); // byte 5 of the CARP header is advbase
  t.same(c.vhidStatus().map((v) => [v.vhid, v.state]), [[2, 'MASTER']], 'vhid 2 still MASTER, untouched');
  t.notOk(c.removeVhid(3300, 1, 0), 'removing it again: false');
  t.notOk(c.removeVhid(3300, 2, 0), 'vhid 2 is not on link 0: false');
  // vhid 2 keeps advertising on its cadence.
  c.handleTimeout(4200);
  t.same(c.drain().map((a) => [a.type, a.vhid]), [['advert', 2]]);
});

t.test('removing a BACKUP vhid sends nothing but the state change', async (t) => {
  const c = node();
  t.ok(c.removeVhid(100, 2, 1));
  const acts = c.drain();
  t.same(acts.map((a) => a.type), ['state']);
  t.match(acts[0], { vhid: 2, from: 'BACKUP', to: 'INIT' });
});

t.test('a vhid added to a running node starts as BACKUP; existing vhids do not change', async (t) => {
  const c = node();
  c.handleTimeout(3100);
  c.drain();
  c.removeVhid(3200, 2, 1);
  c.drain();
  c.addVhid({ vhid: 2, link: 1, advbase: 1, advskew: 100, password: 'b', vips: ['203.0.113.1'] });
  c.start(3300);
  const acts = c.drain();
  t.same(acts.map((a) => [a.type, a.vhid]), [['state', 2]], 'only the new vhid changes state');
  t.match(acts[0], { from: 'INIT', to: 'BACKUP' });
  t.same(c.vhidStatus().map((v) => [v.vhid, v.state, v.advskew]), [[1, 'MASTER', 0], [2, 'BACKUP', 100]]);
});

t.test('removing the vhid on a dead link ends the LINK_DOWN demotion', async (t) => {
  const c = node();
  c.setLink(10, 1, false);
  c.drain();
  t.ok(c.demotion() > 0, 'demoted while the WAN link is down');
  c.removeVhid(20, 2, 1);
  c.drain();
  t.equal(c.demotion(), 0, 'no vhid on the dead link any more: no demotion');
});
