// rtnetlink over the addon's netlink socket: add and remove addresses (the VIPs) and follow link carrier.
// Addresses change in the kernel within the sendmsg call, so a takeover costs no process spawn.
import { native } from './native.js';
import { ip6Bytes, ipNum } from '../config/net.js';

const NETLINK_ROUTE = 0;
const RTMGRP_LINK = 1;
const RTM_NEWLINK = 16;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const IFA_CACHEINFO = 6;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
const AF_INET = 2;
const AF_INET6 = 10;
/** ifa_flags: no duplicate address detection. A VIP is on one node at a time by CARP's say; DAD would hold it
 * "tentative" for a second after every takeover, and a BACKUP's probe must never contest it. */
const IFA_F_NODAD = 0x02;

export interface LinkEvent { index: number; running: boolean }

/** Addresses via RTM_NEWADDR/RTM_DELADDR. Errors come back asynchronously as acks; they are reported to onError. */
export class AddressControl {
  private fd: number;
  private seq = 1;
  private pending = new Map<number, string>();
  private watch: object;
  private buf = new Uint8Array(65536);

  constructor(private readonly onError: (what: string, errno: number) => void) {
    this.fd = native.openNetlink(NETLINK_ROUTE, 0);
    this.watch = native.watch(this.fd, () => this.readAcks());
  }

  /** Set the interface administratively up (RTM_NEWLINK, IFF_UP): the firmware owns its NICs. */
  linkUp(ifindex: number): void {
    const m = Buffer.alloc(32);
    m.writeUInt32LE(32, 0); m.writeUInt16LE(RTM_NEWLINK, 4); m.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
    const seq = this.seq++;
    m.writeUInt32LE(seq, 8);
    m[16] = 0; m.writeInt32LE(ifindex, 20); m.writeUInt32LE(IFF_UP, 24); m.writeUInt32LE(IFF_UP, 28);
    this.pending.set(seq, `link ${ifindex} up`);
    if (native.send(this.fd, m) < 0) this.onError(`link ${ifindex} up`, -11);
  }

  add(ifindex: number, cidrAddr: string): void { this.request(RTM_NEWADDR, ifindex, cidrAddr, `add ${cidrAddr}`); }
  del(ifindex: number, cidrAddr: string): void { this.request(RTM_DELADDR, ifindex, cidrAddr, `del ${cidrAddr}`); }
  /**
   * Add or renew an address that the kernel removes by itself `lifetimeS` seconds after the last renewal
   * (IFA_CACHEINFO valid/preferred lifetime): a VIP whose daemon died or froze stops answering ARP on its own.
   */
  lease(ifindex: number, cidrAddr: string, lifetimeS: number): void {
    this.request(RTM_NEWADDR, ifindex, cidrAddr, `lease ${cidrAddr}`, Math.max(1, Math.floor(lifetimeS)));
  }

  private request(type: number, ifindex: number, cidrAddr: string, what: string, lifetimeS = 0): void {
    if (cidrAddr.includes(':')) { this.request6(type, ifindex, cidrAddr, what, lifetimeS); return; }
    const [ip, p] = cidrAddr.split('/');
    const prefix = Number(p);
    const addr = ipNum(ip);
    const bcast = prefix >= 31 ? addr : (addr | (prefix === 0 ? 0xffffffff : ~(0xffffffff << (32 - prefix)))) >>> 0;
    const { m, o: start } = this.ifaddrmsg(type, 8 * 3, lifetimeS, AF_INET, prefix, 0, ifindex);
    let o = start;
    for (const [t, v] of [[IFA_LOCAL, addr], [IFA_ADDRESS, addr], [IFA_BROADCAST, bcast]]) {
      m.writeUInt16LE(8, o); m.writeUInt16LE(t, o + 2); m.writeUInt32BE(v, o + 4); o += 8;
    }
    this.submit(m, o, lifetimeS, what);
  }

  /** IPv6: IFA_LOCAL and IFA_ADDRESS of 16 bytes, no broadcast, and always without DAD (IFA_F_NODAD). */
  private request6(type: number, ifindex: number, cidrAddr: string, what: string, lifetimeS: number): void {
    const [ip, p] = cidrAddr.split('/');
    const addr = ip6Bytes(ip);
    const { m, o: start } = this.ifaddrmsg(type, 20 * 2, lifetimeS, AF_INET6, Number(p ?? 128), IFA_F_NODAD, ifindex);
    let o = start;
    for (const t of [IFA_LOCAL, IFA_ADDRESS]) { m.writeUInt16LE(20, o); m.writeUInt16LE(t, o + 2); m.set(addr, o + 4); o += 20; }
    this.submit(m, o, lifetimeS, what);
  }

  /** nlmsghdr + ifaddrmsg for RTM_NEWADDR/DELADDR, with room for `attrs` bytes of addresses and the lifetime. */
  private ifaddrmsg(type: number, attrs: number, lifetimeS: number, family: number, prefix: number, flags: number, ifindex: number): { m: Buffer; o: number } {
    const m = Buffer.alloc(16 + 8 + attrs + (lifetimeS ? 20 : 0));
    m.writeUInt32LE(m.length, 0);
    m.writeUInt16LE(type, 4);
    const create = type !== RTM_NEWADDR ? 0 : NLM_F_CREATE | (lifetimeS ? NLM_F_REPLACE : NLM_F_EXCL);
    m.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | create, 6);
    m.writeUInt32LE(this.seq, 8);
    m[16] = family; m[17] = prefix; m[18] = flags; m[19] = 0; m.writeUInt32LE(ifindex, 20);
    return { m, o: 24 };
  }

  /** The lifetime attribute at `o` (if any), then send; the ack names `what`. */
  private submit(m: Buffer, o: number, lifetimeS: number, what: string): void {
    if (lifetimeS) {
      // struct ifa_cacheinfo { u32 ifa_prefered, ifa_valid, cstamp, tstamp }: the kernel fills the stamps.
      m.writeUInt16LE(20, o); m.writeUInt16LE(IFA_CACHEINFO, o + 2);
      m.writeUInt32LE(lifetimeS, o + 4); m.writeUInt32LE(lifetimeS, o + 8);
    }
    const seq = this.seq++;
    this.pending.set(seq, what);
    if (native.send(this.fd, m) < 0) this.onError(what, -11);
  }

  private readAcks(): void {
    for (let i = 0; i < 1000; i++) {
      const n = native.recvInto(this.fd, this.buf);
      if (n < 0) return;
      const dv = new DataView(this.buf.buffer, 0, Math.min(n, this.buf.length));
      for (let o = 0; o + 16 <= dv.byteLength;) {
        const len = dv.getUint32(o, true);
        if (len < 16) break;
        if (dv.getUint16(o + 4, true) === NLMSG_ERROR) {
          const err = dv.getInt32(o + 16, true);
          const seq = dv.getUint32(o + 8, true);
          const what = this.pending.get(seq) ?? `request ${seq}`;
          this.pending.delete(seq);
          // EEXIST on add and EADDRNOTAVAIL on delete mean the kernel already had what we asked for.
          if (err !== 0 && err !== -17 && err !== -99) this.onError(what, err);
        }
        o += (len + 3) & ~3;
      }
    }
  }

  close(): void { native.unwatch(this.watch); native.close(this.fd); }
}

/** Carrier changes of every interface (RTM_NEWLINK on RTMGRP_LINK). On event loss the caller re-reads all links. */
export class LinkMonitor {
  private fd: number;
  private watch: object;
  private buf = new Uint8Array(65536);

  constructor(onLink: (e: LinkEvent) => void, onOverrun: () => void) {
    this.fd = native.openNetlink(NETLINK_ROUTE, RTMGRP_LINK, 1 << 20);
    this.watch = native.watch(this.fd, () => {
      for (let i = 0; i < 1000; i++) {
        const n = native.recvInto(this.fd, this.buf);
        if (n === -1) return;
        if (n === -2) { onOverrun(); continue; }
        const dv = new DataView(this.buf.buffer, 0, Math.min(n, this.buf.length));
        for (let o = 0; o + 32 <= dv.byteLength;) {
          const len = dv.getUint32(o, true);
          if (len < 16) break;
          if (dv.getUint16(o + 4, true) === RTM_NEWLINK) {
            onLink({ index: dv.getInt32(o + 20, true), running: (dv.getUint32(o + 24, true) & IFF_RUNNING) !== 0 });
          }
          o += (len + 3) & ~3;
        }
      }
    });
  }

  close(): void { native.unwatch(this.watch); native.close(this.fd); }
}
