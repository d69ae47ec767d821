// IPv6's part of the demo (issue #16): the board made dual-stack (board/virtual/ipv6.ts); the LAN client learns
// its router (fe80::1) from the MASTER's advertisements and its address by SLAAC, pings the WAN server over IPv6
// every 10 ms, and keeps 20 IPv6 TCP echo sessions open through all three moves (power cut, failback, graceful
// stop), with an IPv6 download across the power cut; no NAT (the server routes the LAN prefix to the WAN VIP).
// JSON: v6.{takeover_ms, pings_lost, failback_ms, graceful_takeover_ms, tcp_sessions_total, tcp_sessions_survived,
// download_ok, ra_from_backup, slaac_address, router, dns_ok, wan_reaches_lan}. The virtual-MAC and DHCP-WAN
// stories leave IPv6 out (an IPv6 VIP answers from the NIC's MAC; the leased WAN vhid carries one address).
import type { VirtualBoard } from '../board.js';
import { VIP } from '../board.js';
import { Pinger } from '../pinger.js';
import { V6, dualStack, ipv6Up, masterIntervals, raCapture, rasOutsideMaster, waitSlaac } from '../ipv6.js';
import type { DemoPlugin } from './plugin.js';
import { client as tcpClient, tcploadArgs, type Run } from './statesync.js';

const ECHO_PORT = 5100;
const DOWNLOAD_PORT = 5101;
const wall = () => performance.timeOrigin + performance.now();
/** tcpload to the server over IPv6, on ports of its own (the statesync plugin's server holds 5000/5001). */
const client = (board: VirtualBoard, args: string[]): Run => tcpClient(board, ['--port', String(ECHO_PORT), '--download-port', String(DOWNLOAD_PORT), ...args], V6.server);

export function ipv6Plugin(opts: { sessions?: number; downloadMB?: number; rateMBps?: number } = {}): DemoPlugin {
  const sessions = opts.sessions ?? 20;
  const bytes = (opts.downloadMB ?? 60) * 1e6;
  const rate = opts.rateMBps ?? 10;
  let off = true;
  let pinger: Pinger | null = null;
  let echo: Run | null = null;
  let dl: Run | null = null;
  let ra: ReturnType<typeof raCapture>[] = [];
  let slaac: { address: string | null; router: string | null } = { address: null, router: null };
  let dnsOk: boolean | null = null;
  let wanReachesLan: boolean | null = null;
  let t0 = 0, t1 = 0, t2 = 0;
  const moves: Record<string, { gap_ms: number; lost: number }> = {};
  return {
    name: 'ipv6',
    configure(c, n, mode) {
      off = mode.mac === 'virtual' || mode.wan === 'dhcp';
      if (!off) dualStack(c, n);
    },
    prepare(board) { if (!off) ipv6Up(board); },
    async setup(ctx) {
      if (off) return;
      ra = [raCapture(ctx.board, 'primary'), raCapture(ctx.board, 'secondary')];
      slaac = await waitSlaac(ctx.board, 15_000);
      // unbound answers localhost itself: the answer proves it listens on the IPv6 VIP, whatever the upstreams do.
      const dig = ctx.board.exec('client', 'dig', ['+short', '+time=2', '+tries=2', '-6', `@${V6.lanVip}`, 'localhost', 'AAAA']);
      dnsOk = dig.stdout.split('\n').includes('::1');
      ctx.board.spawn('server', process.execPath, [...tcploadArgs(), 'server', '--port', String(ECHO_PORT), '--download-port', String(DOWNLOAD_PORT)], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 1000));
      // The internet must not open a connection to a LAN host: no WAN rule passes it (bounded: 2 s).
      wanReachesLan = !!slaac.address && ctx.board.exec('server', 'socat', ['-u', `TCP6:[${slaac.address}]:22,connect-timeout=2`, 'STDOUT']).stderr.includes('Connection refused');
      pinger = new Pinger(ctx.board, 10, V6.server, 'client');
      pinger.start(120_000);
      echo = client(ctx.board, ['--sessions', String(sessions), '--interval-ms', '50', '--stall-ms', '15000', '--grace-ms', '9000']);
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const n = ctx.board.exec('secondary', 'conntrack', ['-L', '-f', 'ipv6', '-p', 'tcp', '--dport', String(ECHO_PORT)]).stdout.split('\n').filter((l) => l.includes('ESTABLISHED')).length;
        if (n >= sessions) { ctx.say(`ipv6: the secondary's kernel holds all ${n} IPv6 echo sessions (no NAT)`); break; }
      }
      ctx.say(`ipv6: client ${slaac.address ?? 'NO SLAAC ADDRESS'} via ${slaac.router ?? 'NO ROUTER'}; DNS over IPv6 on ${V6.lanVip}: ${dnsOk ? 'ok' : 'NO ANSWER'}; ` +
        `the server ${wanReachesLan ? 'REACHED' : 'could not reach'} the client`);
    },
    async beforePowerOff(ctx) {
      if (off) return;
      dl = client(ctx.board, ['--sessions', '0', '--download-bytes', String(bytes), '--download-rate-mbps', String(rate), '--grace-ms', '20000', '--seed', '11']);
      await new Promise((r) => setTimeout(r, 300));
      t0 = wall();
    },
    async afterTakeover(ctx) {
      if (off || !pinger) return;
      t1 = wall();
      moves.takeover = pinger.outage(t0, t1);
      ctx.say(`ipv6: takeover outage ${moves.takeover.gap_ms} ms, ${moves.takeover.lost} echoes lost`);
    },
    async afterFailback(ctx) {
      if (off || !pinger) return;
      t2 = wall();
      moves.failback = pinger.outage(t1, t2);
      ctx.say(`ipv6: failback outage ${moves.failback.gap_ms} ms`);
    },
    async finish(ctx) {
      if (off || !pinger) return { v6: null };
      moves.graceful = pinger.outage(t2, wall());
      await pinger.stop();
      echo?.cp.kill('SIGTERM');
      const [e, d] = await Promise.all([echo?.result ?? null, dl?.result ?? null]);
      for (const c of ra) c.proc.kill('SIGTERM');
      const end = wall();
      const fromBackup = (['primary', 'secondary'] as const).reduce((n, node, i) => n + rasOutsideMaster(ra[i]!.times, masterIntervals(ctx.transitions(node), VIP.lanVhid, end)), 0);
      const v6 = {
        takeover_ms: moves.takeover?.gap_ms ?? null, pings_lost: moves.takeover?.lost ?? null,
        failback_ms: moves.failback?.gap_ms ?? null, graceful_takeover_ms: moves.graceful?.gap_ms ?? null,
        tcp_sessions_total: e?.sessions_total ?? 0, tcp_sessions_survived: e?.sessions_survived ?? 0,
        download_ok: d?.download_ok ?? false, ra_from_backup: fromBackup, ra_seen: ra.reduce((n, c) => n + c.times.length, 0),
        slaac_address: slaac.address, router: slaac.router, dns_ok: dnsOk, wan_reaches_lan: wanReachesLan,
        errors: [...(e?.errors ?? []), ...(d?.download_error ? [d.download_error] : [])].slice(0, 5),
      };
      ctx.say(`ipv6: ${v6.tcp_sessions_survived}/${v6.tcp_sessions_total} sessions survived all three moves, download ${v6.download_ok ? 'ok' : 'FAILED'}; ` +
        `${v6.ra_seen} router advertisements, ${fromBackup} from a node that was not MASTER`);
      return { v6 };
    },
  };
}
