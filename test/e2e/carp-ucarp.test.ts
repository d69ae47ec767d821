// Interop: a duogate node and Debian's ucarp (another CARP implementation) share vhid 1 on the LAN.
// duogate's adverts must authenticate at ucarp and ucarp's at duogate, and the roles must move both ways.
import t from 'tap';
import { writeFileSync, chmodSync } from 'node:fs';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, poll, sleep } from '../../board/virtual/firmware.js';

const board = new VirtualBoard({ prefix: 'dgt-ucarp' });
const fw = new Firmware(board);
t.teardown(() => board.down());

const ucarpHasVip = () => board.addresses('secondary', 'lan0').includes('192.168.1.1');
const duogateState = async () => (await fw.states('primary'))['1'];

t.test('duogate and ucarp elect, hand over on bow-out, and preempt back', async (t) => {
  await board.up();
  fw.resetState();
  // CARP and the firewall only: no duogate peer exists here, so no state sync (whose bulk-sync demotion
  // would wait for a peer table), config sync, heartbeat or MQTT.
  fw.writeConfigs('ucarp', {
    keep: 'all', nodes: ['primary'],
    edit: (c) => { for (const k of ['statesync', 'configsync', 'peer', 'mqtt', 'dhcp', 'dns']) delete c[k]; },
  });
  const up = `${board.runDir}/vip-up.sh`; const down = `${board.runDir}/vip-down.sh`;
  writeFileSync(up, '#!/bin/sh\nip addr add "$2"/24 dev "$1"\n'); chmodSync(up, 0o755);
  writeFileSync(down, '#!/bin/sh\nip addr del "$2"/24 dev "$1"\n'); chmodSync(down, 0o755);
  await fw.start('primary');
  t.ok(await poll(async () => (await duogateState()) === 'MASTER', 6000), 'duogate alone becomes MASTER');

  // ucarp as the secondary: same vhid, password and VIP, advskew 100, preempt, scripts add/remove the VIP.
  const ucarp = board.spawn('secondary', 'ucarp', ['-i', 'lan0', '-s', '192.168.1.3', '-v', '1', '-p', 'lan-carp-secret',
    '-a', '192.168.1.1', '-b', '1', '-k', '100', '-P', '-z', '-n', '-u', up, '-d', down, '-f', 'none'], { stdio: 'ignore' });
  t.teardown(() => { ucarp.kill('SIGKILL'); });
  await sleep(4500);
  t.equal(await duogateState(), 'MASTER', 'duogate stays MASTER (skew 0 beats 100)');
  t.notOk(ucarpHasVip(), 'ucarp stays BACKUP: it accepted duogate adverts (HMAC, checksum, TTL) and never took the VIP');

  await board.stopNode('primary', 'SIGTERM');
  t.ok(await poll(ucarpHasVip, 4000), 'ucarp takes over on duogate\'s bow-out advert');
  const st = await poll(() => !board.addresses('primary', 'lan0').includes('192.168.1.1'), 1000);
  t.ok(st, 'duogate released the VIP');

  await fw.start('primary');
  t.ok(await poll(async () => (await duogateState()) === 'MASTER' && !ucarpHasVip(), 8000), 'duogate hears ucarp adverts (they authenticate) and preempts; ucarp yields');
  const s = await fw.status('primary');
  t.ok(s.carp_counters.accepted >= 1, `duogate accepted ${s.carp_counters.accepted} ucarp adverts`);
  t.equal(s.carp_counters.bad_hmac, 0, 'no ucarp advert failed authentication');
});
