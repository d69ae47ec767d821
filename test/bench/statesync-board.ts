// The state sync lab's node config and minimal stateful ruleset (shared by the benchmark and the e2e tests):
// stateful forward, invalid dropped, tcp_loose=0 (set by the caller), SNAT LAN→WAN to the WAN VIP — what the
// firewall issue describes — so the tests do not depend on the full gateway (DHCP, DNS) being configured.
import { join } from 'node:path';
import { poll } from '../../board/virtual/wait.js';
import { nodeConfigText } from '../helpers/config.js';

export type Node = 'primary' | 'secondary';

export const RULESET = `
table inet ssfw {
  chain input { type filter hook input priority 0; policy accept; ct state invalid counter drop; }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ct state invalid counter drop
    iifname "lan0" oifname "wan0" tcp flags & (syn|ack|fin|rst) == syn accept
    iifname "lan0" oifname "wan0" meta l4proto { udp, icmp } accept
  }
  chain postrouting { type nat hook postrouting priority 100; oifname "wan0" ip saddr 192.168.1.0/24 snat ip to 203.0.113.1; }
}
`;

export function configYaml(runDir: string, node: Node, statesync: Record<string, unknown> | null): string {
  const skew = node === 'primary' ? 0 : 100;
  return nodeConfigText({
    role: node, preempt: true,
    vips: [
      `{ interface: lan, vhid: 1, address: 192.168.1.1/24, password: lan-secret, advbase: 1, advskew: ${skew} }`,
      `{ interface: wan, vhid: 2, address: 203.0.113.1/24, password: wan-secret, advbase: 1, advskew: ${skew} }`,
    ],
    extra: [
      `control: { socket: ${join(runDir, node + '.sock')} }`,
      `state_dir: ${join(runDir, node + '-state')}`,
      'log: { level: info }',
      ...(statesync ? [`statesync: ${JSON.stringify(statesync)}`] : []),
    ].join('\n'),
  });
}

/** Wait (bounded) until every NIC of the node has carrier, so CARP does not start on a link still coming up. */
export async function linksUp(board: { linkState(role: string, ifname: string): { running: boolean } }, node: Node, ms = 3000): Promise<void> {
  await poll(() => ['lan0', 'wan0', 'sync0'].every((i) => board.linkState(node, i).running), ms, 20);
}
