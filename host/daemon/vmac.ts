// Virtual-MAC mode (`carp.vips[].mac: virtual`, README "Virtual or real MAC"): the VIP stays on the NIC, and
// one nftables netdev table on each CARP NIC makes its link layer CARP's 00:00:5e:00:01:<vhid>:
//   egress:  a frame whose IPv4 source is the VIP, and an ARP packet whose sender is the VIP (the kernel's
//            replies and requests, our gratuitous ARP), leave from the virtual MAC, and only while the vhid
//            is in the `owned` set below: otherwise they are dropped, so a BACKUP never sends from the MAC
//            (not even what it still forwards, NATed to the VIP, right after a release).
//   ingress: a frame for the virtual MAC is taken as the NIC's own only while its vhid is in the NIC's
//            `owned` set, i.e. while MASTER. A BACKUP leaves it PACKET_OTHERHOST, which IP drops, so frames a
//            switch floods after flushing a dead port are never routed by the BACKUP (anchors.md, A vs
//            A-novmac).
// No second device: the firewall, NAT, conntrack, Kea and unbound see the NIC and the VIP exactly as in
// real-MAC mode. The daemon owns this table; the firewall's `inet duogate` table is separate.
import { execFile, execFileSync } from 'node:child_process';
import type { Logger } from '../log.js';
import { NftSetWriter, NFPROTO_NETDEV } from '../io/nftset.js';

export const VMAC_TABLE = 'duogate_vmac';

/** CARP's virtual MAC for a vhid (RFC 5798's IPv4 VRRP prefix, which BSD CARP uses too). */
export function virtualMac(vhid: number): string {
  return `00:00:5e:00:01:${vhid.toString(16).padStart(2, '0')}`;
}

export interface VmacLink { n: number; device: string; mac: Uint8Array }
export interface VmacGroup { vhid: number; link: number; vips: string[] }

/** A MAC address as text (aa:bb:cc:dd:ee:ff). */
export const macText = (m: Uint8Array) => [...m.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');

export const macBytes = (m: string) => Uint8Array.from(m.split(':').map((h) => parseInt(h, 16)));

/** The whole table for these links and groups, with `owned` (vhids now MASTER) in the ingress sets. */
export function vmacRuleset(links: VmacLink[], groups: VmacGroup[], owned: ReadonlySet<number>): string {
  // Create-then-delete makes the delete safe when the table is absent; the whole file is one transaction.
  const out = [`table netdev ${VMAC_TABLE} {}`, `delete table netdev ${VMAC_TABLE}`];
  if (!groups.length) return out.join('\n') + '\n';
  out.push(`table netdev ${VMAC_TABLE} {`);
  for (const l of links) {
    const mine = groups.filter((g) => g.link === l.n);
    if (!mine.length) continue;
    const own = mine.filter((g) => owned.has(g.vhid)).map((g) => virtualMac(g.vhid));
    out.push(`  set owned_${l.n} { type ether_addr;${own.length ? ` elements = { ${own.join(', ')} };` : ''} }`);
    // Ingress first of everything on the NIC; the rewritten destination only makes captures after it readable.
    out.push(`  chain in_${l.n} { type filter hook ingress device "${l.device}" priority -500; policy accept;`);
    out.push(`    ether daddr @owned_${l.n} ether daddr set ${macText(l.mac)} meta pkttype set host`);
    out.push('  }');
    // Egress last, after anything else that may rewrite the frame.
    out.push(`  chain out_${l.n} { type filter hook egress device "${l.device}" priority 500; policy accept;`);
    for (const g of mine) {
      const v = virtualMac(g.vhid);
      for (const ip of g.vips) {
        out.push(`    ip saddr ${ip} ether saddr set ${v}`);
        out.push(`    arp saddr ip ${ip} arp saddr ether set ${v} ether saddr set ${v}`);
      }
    }
    // Nothing leaves from a virtual MAC the node does not own: a node that just released the VIP still forwards,
    // for a moment, what LAN clients keep sending it (their ARP entry, in real-MAC mode on the LAN), NATed to the
    // VIP; from the virtual MAC that would move it on the switch away from the new MASTER (docs/wan.md, trap 1).
    out.push(`    ether saddr { ${mine.map((g) => virtualMac(g.vhid)).join(', ')} } ether saddr != @owned_${l.n} counter drop`);
    out.push('  }');
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/**
 * Keeps the table in step with the vhids this node is MASTER of. `set()` applies the whole table at once
 * (start); `own()` changes one element over netlink (transitions); `update()` serialises asynchronous
 * whole-table applies (reconfigure, fallback) so the last state always wins. Each calls `onApplied` with the
 * owned vhids then in force.
 */
export class VirtualMacTable {
  private busy: Promise<void> | null = null;
  private again = false;
  private closed = false;
  /** Applies that failed since start (status). */
  failures = 0;
  /** Whether this process ever had a virtual-MAC vhid (then it owns the table and removes it at stop). */
  private used = false;
  private readonly writer = new NftSetWriter();

  constructor(private readonly log: Logger, private readonly want: () => { links: VmacLink[]; groups: VmacGroup[]; owned: Set<number> },
    private readonly onApplied: (owned: Set<number>) => void) {}

  /** Synchronous apply (start). Throws with nft's message when the kernel refuses it. */
  set(): void {
    const w = this.want();
    // A node without virtual-MAC vhids needs no nft for it (a leftover table goes if nft is there).
    const optional = !w.groups.length;
    if (!optional) this.used = true;
    try {
      execFileSync('nft', ['-f', '-'], { input: vmacRuleset(w.links, w.groups, w.owned), stdio: ['pipe', 'ignore', 'pipe'], timeout: 10_000 });
    } catch (e) {
      const err = (e as { stderr?: Buffer }).stderr?.toString().trim() || String(e);
      if (optional) return;
      throw Object.assign(new Error(`virtual MAC table ${VMAC_TABLE}: nft refused it: ${err}: check that nftables supports netdev ingress/egress on this kernel`), { code: 'DG_ERR_VMAC_NFT' });
    }
    this.onApplied(w.owned);
  }

  /**
   * A takeover or release: the vhid's MAC into or out of its NIC's ingress set over netlink (~0.1 ms, no
   * process), then `onApplied`. Falls back to a whole-table apply when the kernel refuses the change.
   */
  own(link: number, vhid: number, on: boolean): void {
    if (this.closed) return;
    this.used = true;
    // While a whole-table apply runs, the element would land in the table it is about to replace.
    if (this.busy) { this.again = true; return; }
    this.writer.change(on ? 'add' : 'del', NFPROTO_NETDEV, VMAC_TABLE, `owned_${link}`, macBytes(virtualMac(vhid)), (errno) => {
      if (this.closed) return;
      if (errno === 0) { this.onApplied(this.want().owned); return; }
      this.log.warn('virtual MAC set change refused over netlink; applying the whole table', { vhid, on, errno });
      this.update();
    });
  }

  /** Asynchronous apply of the current wish (reconfigure, or a fallback). */
  update(): void {
    if (this.closed) return;
    if (this.busy) { this.again = true; return; }
    const w = this.want();
    if (w.groups.length) this.used = true;
    let done!: () => void;
    this.busy = new Promise((r) => { done = r; });
    const cp = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err, _out, stderr) => {
      this.busy = null;
      done();
      if (this.closed) return;
      if (err) {
        this.failures++;
        this.log.error('virtual MAC table not applied: this node cannot take the virtual MAC', { code: 'DG_ERR_VMAC_NFT', err: stderr.trim() || String(err) });
      } else {
        this.onApplied(w.owned);
        // A takeover or release while nft ran went into the table this apply replaced: apply again.
        const now = this.want().owned;
        if (now.size !== w.owned.size || [...now].some((v) => !w.owned.has(v))) this.again = true;
      }
      if (this.again) { this.again = false; this.update(); }
    });
    cp.stdin?.end(vmacRuleset(w.links, w.groups, w.owned));
  }

  /**
   * A real NIC drops unicast frames for MACs other than its own before the kernel sees them: put each
   * virtual MAC in the NIC's unicast filter (as `bridge fdb add MAC dev NIC self` does). Only the ingress
   * set decides whether the node takes such a frame.
   */
  nicFilter(add: boolean): void {
    const w = this.want();
    for (const g of w.groups) {
      const l = w.links.find((x) => x.n === g.link);
      if (!l) continue;
      try {
        execFileSync('bridge', ['fdb', add ? 'replace' : 'del', virtualMac(g.vhid), 'dev', l.device, 'self', 'permanent'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
      } catch (e) {
        if (add) this.log.warn('virtual MAC not added to the NIC unicast filter: a NIC that filters unicast drops frames for it', { device: l.device, mac: virtualMac(g.vhid), err: (e as { stderr?: Buffer }).stderr?.toString().trim() || String(e) });
      }
    }
  }

  /** Remove the table (daemon stop): a stopped node neither accepts nor sends for a virtual MAC. */
  async close(): Promise<void> {
    if (this.closed || !this.used) { this.closed = true; return; }
    this.closed = true;
    this.writer.close();
    // An apply still running would put the table back after the delete.
    await this.busy;
    this.nicFilter(false);
    try {
      execFileSync('nft', ['-f', '-'], { input: vmacRuleset([], [], new Set()), stdio: ['pipe', 'ignore', 'pipe'], timeout: 10_000 });
    } catch (e) {
      this.log.warn('virtual MAC table not removed', { table: VMAC_TABLE, err: (e as { stderr?: Buffer }).stderr?.toString().trim() || String(e) });
    }
  }
}
