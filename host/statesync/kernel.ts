// The three ctnetlink sockets of state sync, and sending the core's requests to the kernel.
// - events: NEW/UPDATE/DESTROY groups, opened (subscribed) BEFORE the first dump so no change falls
//   between the dump and the subscription; a big forced buffer; ENOBUFS means events were lost.
// - dump: full-table dumps (replies only, no events mixed in).
// - inject: our creates/updates/deletes. Its port id stamps the events our injections cause, which is
//   how they are recognised and not echoed back to the peer.
import { native } from '../io/native.js';

const NETLINK_NETFILTER = 12;
/** Largest single send() to the kernel; requests are split at message boundaries. */
const SEND_CHUNK = 60 * 1024;

export class CtSockets {
  events: number;
  readonly dump: number;
  readonly inject: number;
  /** Our inject socket's netlink port id (learned from the kernel's answer to a barrier). */
  injectPid = 0;
  sendErrors = 0;

  constructor(private readonly eventBuffer: number, groups: number) {
    const fds: number[] = [];
    try {
      fds.push(native.openNetlink(NETLINK_NETFILTER, groups, eventBuffer));
      fds.push(native.openNetlink(NETLINK_NETFILTER, 0, 4 * 1024 * 1024));
      fds.push(native.openNetlink(NETLINK_NETFILTER, 0, 8 * 1024 * 1024));
    } catch (e) {
      for (const fd of fds) native.close(fd);
      throw e;
    }
    [this.events, this.dump, this.inject] = fds;
  }

  /** Replace the event socket with one bound to `groups` (opened before the old one closes: no gap). */
  resubscribe(groups: number): number {
    const old = this.events;
    this.events = native.openNetlink(NETLINK_NETFILTER, groups, this.eventBuffer);
    native.close(old);
    return this.events;
  }

  /** Send a run of netlink messages (as the core wrote them) in chunks that end on message boundaries. */
  sendAll(fd: number, buf: Uint8Array): void {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let start = 0;
    while (start < buf.length) {
      let end = start;
      while (end < buf.length) {
        const l = (dv.getUint32(end, true) + 3) & ~3;
        if (l < 16 || end + l > buf.length) { end = buf.length; break; }
        if (end + l - start > SEND_CHUNK && end > start) break;
        end += l;
      }
      try {
        if (native.send(fd, buf.subarray(start, end)) < 0) this.sendErrors++;
      } catch { this.sendErrors++; }
      start = end;
    }
  }

  /** Request a dump of the conntrack table, IPv4 and IPv6, on the dump socket. */
  requestDump(seq: number): void {
    const b = Buffer.alloc(20);
    b.writeUInt32LE(20, 0); b.writeUInt16LE(0x101, 4); b.writeUInt16LE(0x301, 6); b.writeUInt32LE(seq >>> 0, 8);
    b[16] = 0; // AF_UNSPEC: the kernel filters a dump by the family given here; unspecified is both
    native.send(this.dump, b);
  }

  close(): void { for (const fd of [this.events, this.dump, this.inject]) { try { native.close(fd); } catch { /* already closed */ } } }
}

/** Entries the kernel holds now (nf_conntrack_count of this network namespace), or -1 if unknown. */
export async function kernelCount(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  try { return Number((await readFile('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8')).trim()); } catch { return -1; }
}
