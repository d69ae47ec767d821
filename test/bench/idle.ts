// Idle cost of the daemon on the virtual board (prefix dgb-idle), full default configs, MQTT broker up:
//  1. paired: both daemons running, nothing happening, for WINDOW_S after 30 s of start-up (whose RSS peak is
//     reported apart): CPU share of one core (utime + stime of /proc/PID/stat over the window) and RSS (VmRSS,
//     sampled every second) of each daemon;
//  2. lone: LAN clients open new TCP connections through the gateway (100/s), the secondary is stopped while
//     their states are being synced, the broker is stopped, the traffic ends; then the primary, alone, for
//     WINDOW_S: the same figures, plus what it sent in that window (state sync retransmissions, datagrams,
//     MQTT reconnect attempts) — retries to an absent peer or broker must be backed off and bounded.
import type { Bench } from './registry.js';
import { FullBoard, ECHO_PORT, sampleUsage, toolArgs } from './fullboard.js';
import { sleep } from '../../board/virtual/firmware.js';

const WINDOW_S = Number(process.env.DG_BENCH_IDLE_S ?? 60);

export const idleBench: Bench = async (say) => {
  if (process.getuid?.() !== 0) { say('idle: needs root (network namespaces); skipped'); return { skipped: true }; }
  const fb = new FullBoard('dgb-idle');
  const out: Record<string, unknown> = { window_s: WINDOW_S };
  try {
    await fb.up();
    await fb.mqtt.startBroker();
    await fb.startPair();
    await fb.until('primary', (s) => s.mqtt?.connected, 15_000, 'MQTT connected');
    await fb.until('secondary', (s) => s.mqtt?.connected, 15_000, 'MQTT connected');
    // Start-up (config parsing, schema compilation, TLS identity, first dumps, discovery, DHCP HA handshake)
    // leaves garbage that the first major GC, some 20-30 s later, returns: reported apart, not as idling.
    const startup = await sampleUsage({ primary: fb.pid('primary'), secondary: fb.pid('secondary') }, 30_000);
    out.startup_rss_mb = Math.max(startup.primary.rss_mb_max, startup.secondary.rss_mb_max);
    say(`start-up (first 30 s after both connected to the broker): RSS up to ${out.startup_rss_mb} MB`);
    say(`paired: both daemons, full configs, broker up; sampling ${WINDOW_S} s`);
    const paired = await sampleUsage({ primary: fb.pid('primary'), secondary: fb.pid('secondary') }, WINDOW_S * 1000);
    for (const [n, u] of Object.entries(paired)) say(`  ${n}: ${u.cpu_pct} % of a core, RSS ${u.rss_mb_min}-${u.rss_mb_max} MB`);
    out.paired = paired;
    out.paired_cpu_pct = Math.max(paired.primary.cpu_pct, paired.secondary.cpu_pct);
    out.paired_rss_mb = Math.max(paired.primary.rss_mb_max, paired.secondary.rss_mb_max);

    say('lone: 100 new TCP connections/s from the LAN client; the secondary stopped mid-stream; broker stopped');
    const churn = fb.board.spawn('client', process.execPath, [...toolArgs('test/bench/load-tools'), 'churn', '--dst', '203.0.113.10', '--port', String(ECHO_PORT), '--rate', '100', '--duration-ms', '6000'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let churnOut = '';
    churn.stdout!.on('data', (d: Buffer) => { churnOut += d.toString(); });
    await sleep(3000);
    const inFlight = (await fb.status('primary')).statesync;
    await fb.board.stopNode('secondary', 'SIGKILL');
    await fb.mqtt.stop();
    await new Promise<void>((r) => { const t = setTimeout(r, 8000); churn.once('exit', () => { clearTimeout(t); r(); }); });
    say(`  traffic: ${churnOut.trim() || '(no summary)'}; at the stop the primary had ${inFlight.in_flight} datagrams in flight, ${inFlight.states_table} states`);
    await sleep(5000);
    const before = await fb.status('primary');
    say(`lone primary: sampling ${WINDOW_S} s`);
    const lone = await sampleUsage({ primary: fb.pid('primary') }, WINDOW_S * 1000);
    const after = await fb.status('primary');
    const d = (f: (s: any) => number) => f(after) - f(before);
    const u = lone.primary;
    out.lone = u;
    out.lone_cpu_pct = u.cpu_pct;
    out.lone_rss_mb = u.rss_mb_max;
    out.lone_rss_mb_min = u.rss_mb_min;
    out.lone_statesync_retransmitted = d((s) => s.statesync.messages.retransmitted);
    out.lone_statesync_tx_msgs = d((s) => s.statesync.messages.tx_msgs);
    out.lone_statesync_in_flight = after.statesync.in_flight;
    out.lone_statesync_queue = after.statesync.queue;
    out.lone_mqtt_reconnects = d((s) => s.mqtt.reconnects);
    out.lone_carp_role = after.carp_role;
    say(`  primary: ${u.cpu_pct} % of a core, RSS ${u.rss_mb_min}-${u.rss_mb_max} MB; in ${u.seconds} s: state sync sent ${out.lone_statesync_tx_msgs} datagrams `
      + `(${out.lone_statesync_retransmitted} retransmissions; ${out.lone_statesync_in_flight} in flight, ${out.lone_statesync_queue} states queued), `
      + `MQTT reconnect attempts ${out.lone_mqtt_reconnects}`);
    say(`  target ≤ 2 % of a core, ≤ 100 MB: paired ${out.paired_cpu_pct} %, ${out.paired_rss_mb} MB; lone ${out.lone_cpu_pct} %, ${out.lone_rss_mb} MB`);
  } finally {
    await fb.down();
  }
  return out;
};
