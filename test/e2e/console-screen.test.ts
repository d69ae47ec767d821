// The console's status block fits 80x24 whatever the pair reports (many VIPs, many long alarms), in colour
// and without. Pure rendering: no board needed (the board-driven test is console.test.ts).
import t from 'tap';
import { Paint, fit, menuLines, statusLines, useColor, wrap } from '../../host/console/screen.js';

const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
const alarm = (n: number) => ({ name: 'split_brain', message: `split brain: this node and gw-b are both MASTER for vhid ${n} (10.0.${n}.1/24, 10.0.${n}.2/24, 10.0.${n}.3/24); they do not hear each other's CARP adverts on that segment: check its switch` });
/** `n` networks as the daemon reports them: wan, lan, VLANs on lan0, sync last. */
function networks(n: number): Record<string, any> {
  const names = ['wan', 'lan', ...Array.from({ length: Math.max(0, n - 3) }, (_, i) => `vlan${i + 10}`), 'sync'].slice(0, n);
  return Object.fromEntries(names.map((name, i) => [name, {
    kind: name === 'wan' || name === 'sync' ? name : 'internal', device: name.startsWith('vlan') ? `lan0.${i + 8}` : `${name}0`,
    ...(name.startsWith('vlan') ? { vlan: i + 8 } : {}), address: `10.${i}.0.2/24`, carrier: i !== 2,
    vips: name === 'sync' ? [] : [{ vhid: i + 1, addresses: [`10.${i}.0.1/24`], state: i === 3 ? 'BACKUP' : 'MASTER' }],
  }]));
}
function status(vips: number, alarms: number, nets = 0): any {
  return {
    ...(nets ? { networks: networks(nets) } : {}),
    node: 'gw-a', role: 'primary', carp_role: 'MIXED', uptime_s: 90061, maintenance: { on: true, since: '2026-11-26T04:00:00.000Z' }, demotion: 2,
    vips: Array.from({ length: vips }, (_, i) => ({ vhid: i + 1, interface: 'lan', addresses: [`10.0.${i}.1/24`], state: i % 2 ? 'BACKUP' : 'MASTER', last_change: '2026-11-26T04:00:00.000Z', last_change_why: 'preempted a worse master' })),
    peer: { peer: 'gw-b', sync_link: 'silent', lan_path: 'ok', peer_view: { fresh: true, maintenance: true, vips: [{ vhid: 1, state: 'MASTER' }] }, alarms: Array.from({ length: alarms }, (_, i) => alarm(i + 1)) },
    statesync: { enabled: true, states_table: 123456, peer: { last_heard_ms_ago: 99999 }, bulk: { state: 'done' } },
    configsync: { peer: { state: 'behind' } }, dhcp: { ha_state: 'partner-down', leases: 3 }, mqtt: { connected: false, state: 'backoff', alarms: [] },
  };
}

t.test('every combination fits 80x24 with the menu and the prompt', async (t) => {
  for (const color of [false, true]) {
    const p = new Paint(color);
    for (const [v, a, n] of [[2, 0, 0], [2, 1, 0], [6, 3, 0], [30, 0, 0], [30, 5, 0], [64, 10, 0], [3, 0, 4], [6, 1, 8], [30, 3, 8], [64, 10, 8]]) {
      const lines = [...statusLines(status(v, a, n), null, p), ...menuLines(true), 'Select [1]: '];
      t.ok(lines.length <= 24, `${v} VIPs, ${a} alarms, ${n} networks, colour ${color}: ${lines.length} lines`);
      const text = visible(lines.join('\n'));
      for (const name of Object.keys(networks(n))) t.match(text, new RegExp(`(^ {2}|Networks: |\\| )${name} `, 'm'), `network ${name} listed`);
      t.ok(lines.every((l) => visible(l).length <= 79), 'every line under 80 columns');
      if (!color) t.notOk(lines.some((l) => l.includes('\x1b')), 'no escapes without colour');
      if (a) t.match(visible(text), new RegExp(`ALARMS \\(${a}\\)`), 'alarm count');
      if (v > 10) t.match(visible(text), /more VIPs \(duogate status lists all\)/, 'the VIPs that did not fit are counted');
    }
  }
  const s = statusLines(status(2, 1), null, new Paint(false)).join('\n');
  t.match(s, /CARP MIXED {3}maintenance ON since 11-26 04:00 {3}demotion 2 {3}uptime 1d1h/);
  t.match(s, /^ {2}1 +lan +10\.0\.0\.1\/24 +MASTER +MASTER/m, 'own state and the peer\'s');
  t.match(s, /^ {2}2 {4}lan .*BACKUP {3}\? /m, 'a vhid the peer did not report');
  t.match(s, /Peer gw-b: sync link silent, LAN ok, peer in maintenance/);
  t.match(s.replace(/\n {2}/g, ' '), /Sync: states FAILING \(123456\) \| config NOT in sync \| dhcp partner-down \| mqtt backoff/, 'wrapped, not cut');
  t.match(s, /! split brain: this node and gw-b are both MASTER for vhid 1 \(10\.0\.1\.1\/24,/, 'alarm: its first clause, wrapped');
});

t.test('every network: device (VLAN as <nic>.<id>), link, address, CARP state, VIPs', async (t) => {
  const rows = statusLines(status(3, 0, 4), null, new Paint(false));
  const text = rows.join('\n');
  t.match(text, /^ {2}NETWORK {2}DEVICE {5}LINK {2}ADDRESS {12}CARP {4}VIPS$/m, 'a table when there is room');
  t.match(text, /^ {2}wan {6}wan0 {7}up {4}10\.0\.0\.2\/24 {8}MASTER {2}10\.0\.0\.1\/24$/m);
  t.match(text, /^ {2}vlan10 {3}lan0\.10 {4}DOWN {2}10\.2\.0\.2\/24 {8}MASTER {2}10\.2\.0\.1\/24$/m, 'a VLAN network, its NIC down');
  t.match(text, /^ {2}sync {5}sync0 {6}up {4}10\.3\.0\.2\/24 {8}- {7}-$/m, 'the sync link: no VIP, no CARP state');
  t.ok(rows.findIndex((l) => l.includes('NETWORK')) < rows.findIndex((l) => l.includes('VHID')), 'networks above the VIP table');
  // Short of room (many alarms), all of them still show, on at most two lines.
  const tight = statusLines(status(30, 10, 8), null, new Paint(false)).join('\n');
  t.notMatch(tight, /NETWORK {2}DEVICE/, 'no table when short of room');
  t.match(tight.replace(/\n {2}/g, ' '), /Networks: wan wan0 up MASTER \| lan lan0 up MASTER \| vlan10 lan0\.10 DOWN MASTER \| vlan11 lan0\.11 up BACKUP \|[^\n]* sync sync0 up/, 'every network in the short form');
  t.notMatch(statusLines(status(2, 0), null, new Paint(false)).join('\n'), /NETWORK|Networks:/, 'an older daemon without networks: nothing');
});

t.test('a stale peer view shows as lost; a daemon that does not answer says so', async (t) => {
  const st = status(2, 0); st.peer.peer_view.fresh = false;
  t.match(statusLines(st, null, new Paint(false)).join('\n'), /^ {2}1 .*MASTER +lost/m);
  const down = statusLines(null, 'the daemon is not running (no control socket at /run/duogate/duogate.sock)', new Paint(false));
  t.match(down.join('\n'), /daemon not answering: the daemon is not running/);
  t.ok(down.every((l) => l.length <= 79));
});

t.test('colour rules, cutting and wrapping', async (t) => {
  t.equal(useColor({ TERM: 'xterm' }, true), true);
  t.equal(useColor({ TERM: 'dumb' }, true), false);
  t.equal(useColor({ TERM: 'xterm', NO_COLOR: '1' }, true), false);
  t.equal(useColor({}, true), false, 'no TERM');
  t.equal(useColor({ TERM: 'xterm' }, false), false, 'not a terminal (a pipe, a log)');
  t.equal(visible(fit(new Paint(true).green('x'.repeat(100)))).length, 79, 'escape codes do not count as columns');
  t.same(wrap('aaa bbb ccc', 7), ['aaa bbb', '  ccc']);
  t.ok(wrap('x'.repeat(200)).every((l) => l.length <= 79), 'a word longer than the line is split');
});
