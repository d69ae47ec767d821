// A LAN client that ignores gratuitous ARP, as some embedded devices and locked-down hosts do: an nft `arp`
// table in the client's namespace drops every ARP request sent from the gateway address (gratuitous or a
// request the gateway sends on its own) and every reply for it that the client did not ask for, so the client
// learns the gateway's MAC only from answers to its own requests. Used by the virtual-MAC test and the demo.
import type { VirtualBoard } from './board.js';

const TABLE = 'garpdeaf';

/** Install the rules in the client's namespace (replacing an earlier copy). */
export function deafenClient(board: VirtualBoard, gateway: string): void {
  const client = board.addresses('client', 'eth0')[0];
  board.exec('client', 'nft', ['-f', '-'], {
    check: true,
    input: [
      `table arp ${TABLE} {}`, `delete table arp ${TABLE}`,
      `table arp ${TABLE} {`,
      '  chain in { type filter hook input priority 0; policy accept;',
      `    arp saddr ip ${gateway} arp operation request counter drop`,
      // A reply is wanted only when it answers the client's own request, i.e. is addressed to the client.
      `    arp saddr ip ${gateway} arp operation reply arp daddr ip != ${client} counter drop`,
      '  }',
      '}',
    ].join('\n') + '\n',
  });
}

/** ARP packets from the gateway the client dropped so far (0 when the table is absent). */
export function deafDrops(board: VirtualBoard): number {
  const r = board.exec('client', 'nft', ['list', 'table', 'arp', TABLE]);
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
}

/** The client's ARP entry for `ip`: its MAC, or null while it has none (incomplete, failed or absent). */
export function neighMac(board: VirtualBoard, ip: string): string | null {
  const r = board.exec('client', 'ip', ['-j', 'neigh', 'show', ip, 'dev', 'eth0']);
  try {
    const e = (JSON.parse(r.stdout || '[]') as { lladdr?: string }[])[0];
    return e?.lladdr ?? null;
  } catch { return null; }
}
