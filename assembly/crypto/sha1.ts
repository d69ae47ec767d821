// SHA-1 (FIPS 180-4) for CARP's HMAC-SHA1. Written here rather than called from node:crypto because the
// core verifies adverts before it acts on them (verify-then-act) and must stay sans-IO: a host round-trip
// per packet would put I/O in the middle of the receive pipeline and double the cost per advert.
// Tested against node:crypto (test/helpers/carp.ts) and captured ucarp adverts in test/unit/carp-advert.test.ts.

const W = memory.data(80 * 4, 16);

/** Compress one 64-byte block at `block` into the 5-word state at `h` (host-endian words). */
export function sha1Block(h: usize, block: usize): void {
  for (let t: usize = 0; t < 16; t++) store<u32>(W + (t << 2), bswap<u32>(load<u32>(block + (t << 2))));
  for (let t: usize = 16; t < 80; t++) {
    const x = load<u32>(W + ((t - 3) << 2)) ^ load<u32>(W + ((t - 8) << 2)) ^
      load<u32>(W + ((t - 14) << 2)) ^ load<u32>(W + ((t - 16) << 2));
    store<u32>(W + (t << 2), rotl<u32>(x, 1));
  }
  let a = load<u32>(h), b = load<u32>(h, 4), c = load<u32>(h, 8), d = load<u32>(h, 12), e = load<u32>(h, 16);
  for (let t: usize = 0; t < 80; t++) {
    let f: u32, k: u32;
    if (t < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
    else if (t < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
    else if (t < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
    else { f = b ^ c ^ d; k = 0xca62c1d6; }
    const tmp = rotl<u32>(a, 5) + f + e + k + load<u32>(W + (t << 2));
    e = d; d = c; c = rotl<u32>(b, 30); b = a; a = tmp;
  }
  store<u32>(h, load<u32>(h) + a); store<u32>(h, load<u32>(h, 4) + b, 4);
  store<u32>(h, load<u32>(h, 8) + c, 8); store<u32>(h, load<u32>(h, 12) + d, 12);
  store<u32>(h, load<u32>(h, 16) + e, 16);
}

export function sha1Init(h: usize): void {
  store<u32>(h, 0x67452301); store<u32>(h, 0xefcdab89, 4); store<u32>(h, 0x98badcfe, 8);
  store<u32>(h, 0x10325476, 12); store<u32>(h, 0xc3d2e1f0, 16);
}

const TAIL = memory.data(128, 16);

/**
 * Finish a hash whose state `h` has already absorbed `prefixLen` bytes (a multiple of 64): absorb `len`
 * bytes at `msg`, pad, and write the 20-byte big-endian digest to `out`. `h` is modified.
 */
export function sha1Finish(h: usize, prefixLen: u32, msg: usize, len: u32, out: usize): void {
  let off: u32 = 0;
  while (len - off >= 64) { sha1Block(h, msg + off); off += 64; }
  const rest = len - off;
  memory.fill(TAIL, 0, 128);
  memory.copy(TAIL, msg + off, rest);
  store<u8>(TAIL + rest, 0x80);
  const blocks: u32 = rest + 9 > 64 ? 2 : 1;
  const bits = (<u64>prefixLen + <u64>len) << 3;
  store<u64>(TAIL + blocks * 64 - 8, bswap<u64>(bits));
  sha1Block(h, TAIL);
  if (blocks == 2) sha1Block(h, TAIL + 64);
  for (let i: usize = 0; i < 5; i++) store<u32>(out + (i << 2), bswap<u32>(load<u32>(h + (i << 2))));
}
