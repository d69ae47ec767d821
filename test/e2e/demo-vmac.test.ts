// The whole demo in virtual-MAC mode (`npm run demo -- --mac=virtual`): every feature keeps working with the
// VIPs on 00:00:5e:00:01:<vhid> (DHCP, DNS, NAT, config sync, state sync with the 20 sessions and the
// download), and the LAN client, which drops gratuitous ARP, keeps its gateway through every move.
import t from 'tap';
import { runScenario } from '../../board/virtual/demo/scenario.js';
import { plugins } from '../../board/virtual/demo/plugins.js';

t.test('the demo in virtual-MAC mode', async (t) => {
  const r = await runScenario({ prefix: 'dv3', say: () => {}, plugins, mac: 'virtual' }) as any;
  t.comment(JSON.stringify({ ...r, states: undefined }));
  t.equal(r.mac_mode, 'virtual');
  t.equal(r.garp_deaf_client_ok, true, 'a client that drops gratuitous ARP kept its gateway (one MAC seen, GARPs ignored, outage = takeover)');
  t.ok(r.takeover_ms <= 3500, `power-off takeover ${r.takeover_ms} ms <= 3500`);
  t.ok(r.failback_ms <= 300, `failback ${r.failback_ms} ms <= 300`);
  t.ok(r.graceful_takeover_ms <= 300, `bow-out handover ${r.graceful_takeover_ms} ms <= 300`);
  t.equal(r.dual_master_ms, 0);
  t.equal(r.dhcp_ok, true); t.equal(r.dns_ok, true); t.equal(r.snat_ok, true);
  t.equal(r.config_sync_after_failback, 'in_sync');
  for (const k of ['failover', 'failback']) {
    t.equal(r.statesync[k].tcp_sessions_survived, 20, `${k}: 20/20 sessions`);
    t.equal(r.statesync[k].download_ok, true, `${k}: download intact`);
  }
});
