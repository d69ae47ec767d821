// Adding and deleting one element of an nftables set over netfilter netlink, without spawning nft: a
// takeover in virtual-MAC mode waits for its ingress set (host/daemon/vmac.ts), and a spawned `nft` costs
// 20-80 ms on a busy node, this well under a millisecond. One batch per change (BEGIN, NEWSETELEM or
// DELSETELEM with NLM_F_ACK, END); the kernel's ack (NLMSG_ERROR with 0, or -errno) completes it.
import { native } from './native.js';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1, NLM_F_ACK = 0x4, NLM_F_CREATE = 0x400;
const NLA_F_NESTED = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE = 1, NFTA_SET_ELEM_LIST_SET = 2, NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1, NFTA_SET_ELEM_KEY = 1, NFTA_DATA_VALUE = 1;
export const NFPROTO_NETDEV = 5;
const ENOENT = 2;

const align4 = (n: number) => (n + 3) & ~3;

function attr(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(align4(4 + payload.length));
  const dv = new DataView(out.buffer);
  dv.setUint16(0, 4 + payload.length, true);
  dv.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
const cstr = (s: string) => cat(new TextEncoder().encode(s), new Uint8Array(1));

function msg(type: number, flags: number, seq: number, family: number, resId: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + 4 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, out.length, true);
  dv.setUint16(4, type, true);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, seq, true);
  dv.setUint32(12, 0, true);
  out[16] = family; out[17] = 0; dv.setUint16(18, resId, false);
  out.set(body, 20);
  return out;
}

/** The batch that adds (or deletes) `key` in set `set` of table `table` (family `family`); the element message has `seq`. */
export function setElemBatch(op: 'add' | 'del', family: number, table: string, set: string, key: Uint8Array, seq: number): Uint8Array {
  const elem = attr(NFTA_LIST_ELEM | NLA_F_NESTED, attr(NFTA_SET_ELEM_KEY | NLA_F_NESTED, attr(NFTA_DATA_VALUE, key)));
  const body = cat(attr(NFTA_SET_ELEM_LIST_TABLE, cstr(table)), attr(NFTA_SET_ELEM_LIST_SET, cstr(set)), attr(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, elem));
  const type = (NFNL_SUBSYS_NFTABLES << 8) | (op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
  return cat(
    msg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq - 1, 0, NFNL_SUBSYS_NFTABLES, new Uint8Array(0)),
    msg(type, NLM_F_REQUEST | NLM_F_ACK | (op === 'add' ? NLM_F_CREATE : 0), seq, family, 0, body),
    msg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1, 0, NFNL_SUBSYS_NFTABLES, new Uint8Array(0)),
  );
}

type Done = (errno: number) => void;

/** One netfilter netlink socket for set element changes; each change calls back with 0 or the kernel's errno. */
export class NftSetWriter {
  private fd = -1;
  private watch: object | null = null;
  private seq = 1000;
  private readonly pending = new Map<number, Done>();
  private readonly rx = new Uint8Array(8192);

  private open(): void {
    if (this.fd >= 0) return;
    this.fd = native.openNetlink(NETLINK_NETFILTER, 0);
    this.watch = native.watch(this.fd, () => this.drain());
  }

  /**
   * Add or delete one element; a delete of an absent element counts as done (0). The kernel runs the batch
   * inside send() and queues its ack before send() returns, so the answer is read at once: `done` is called
   * before this returns (or, should the ack not be queued yet, from the event loop).
   */
  change(op: 'add' | 'del', family: number, table: string, set: string, key: Uint8Array, done: Done): void {
    this.open();
    const seq = (this.seq += 3);
    this.pending.set(seq, (e) => done(op === 'del' && e === ENOENT ? 0 : e));
    if (native.send(this.fd, setElemBatch(op, family, table, set, key, seq)) < 0) {
      this.pending.delete(seq);
      done(11); // EAGAIN: the socket buffer is full; the caller falls back
      return;
    }
    this.drain();
  }

  private drain(): void {
    for (let i = 0; i < 64 && this.fd >= 0; i++) {
      const n = native.recvInto(this.fd, this.rx);
      if (n < 0) break;
      const dv = new DataView(this.rx.buffer, 0, Math.min(n, this.rx.length));
      for (let o = 0; o + 16 <= dv.byteLength;) {
        const len = dv.getUint32(o, true);
        if (len < 16) break;
        const type = dv.getUint16(o + 4, true);
        const seq = dv.getUint32(o + 8, true);
        if (type === NLMSG_ERROR && o + 20 <= dv.byteLength) {
          const err = -dv.getInt32(o + 16, true);
          const cb = this.pending.get(seq);
          if (cb) { this.pending.delete(seq); cb(err); }
        }
        o += align4(len);
      }
    }
  }

  close(): void {
    if (this.watch) native.unwatch(this.watch);
    if (this.fd >= 0) native.close(this.fd);
    this.fd = -1; this.watch = null;
    for (const cb of this.pending.values()) cb(9); // EBADF: closed before the kernel answered
    this.pending.clear();
  }
}
