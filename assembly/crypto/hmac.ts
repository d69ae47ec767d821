// HMAC-SHA1 (RFC 2104) with the key schedule done once per key: CARP authenticates every advert with the
// same per-vhid key, so the inner and outer states after the ipad/opad blocks are kept and only the
// message and the outer digest are hashed per packet (4 compressions instead of 6).
import { sha1Block, sha1Finish, sha1Init } from './sha1';

const PAD = memory.data(64, 16);
const WORK = memory.data(20, 16);
const INNER_DIGEST = memory.data(20, 16);

/** Precomputed key state: 5 inner + 5 outer SHA-1 words. Owned by whoever holds the key. */
export class HmacKey {
  inner: StaticArray<u32> = new StaticArray<u32>(5);
  outer: StaticArray<u32> = new StaticArray<u32>(5);

  /** Key bytes at `key` (at most 64; CARP uses at most 19, carp.md §2.1). */
  constructor(key: usize, keyLen: u32) {
    const n: u32 = keyLen > 64 ? 64 : keyLen;
    const inner = changetype<usize>(this.inner);
    const outer = changetype<usize>(this.outer);
    memory.fill(PAD, 0x36, 64);
    for (let i: u32 = 0; i < n; i++) store<u8>(PAD + i, load<u8>(key + i) ^ 0x36);
    sha1Init(inner); sha1Block(inner, PAD);
    memory.fill(PAD, 0x5c, 64);
    for (let i: u32 = 0; i < n; i++) store<u8>(PAD + i, load<u8>(key + i) ^ 0x5c);
    sha1Init(outer); sha1Block(outer, PAD);
  }

  /** Write HMAC(key, msg[0..len]) (20 bytes) to `out`. */
  mac(msg: usize, len: u32, out: usize): void {
    memory.copy(WORK, changetype<usize>(this.inner), 20);
    sha1Finish(WORK, 64, msg, len, INNER_DIGEST);
    memory.copy(WORK, changetype<usize>(this.outer), 20);
    sha1Finish(WORK, 64, INNER_DIGEST, 20, out);
  }
}
