// A hostile LAN host's CARP tool, run inside a board namespace (`ip netns exec NS node --import tsx ...`).
// It sends whole IPv4 datagrams through an AF_PACKET socket, so it can claim any source address.
//
//   attacker.ts IFNAME capture VHID COUNT TIMEOUT_MS
//       print COUNT received adverts of VHID as hex payloads (CARP header and trailer), one per line
//   attacker.ts IFNAME send SRC EVERY_MS FOR_MS HEX [HEX...]
//       send the payloads in turn as proto-112 datagrams from SRC to 224.0.0.18 (TTL 255), one every EVERY_MS
//       (>= 1; bounded by FOR_MS and 1,000,000 datagrams); prints how many it sent
import { native } from '../../host/io/native.js';
import { checksum, ipBytes } from './carp.js';
import { sleep } from '../../board/virtual/wait.js';

const [ifname, verb, ...args] = process.argv.slice(2);
const CARP_MAC = Uint8Array.from([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);

function datagram(payload: Buffer, src: string): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45; h[1] = 0x10; h.writeUInt16BE(20 + payload.length, 2); h.writeUInt16BE(0x4000, 6);
  h[8] = 255; h[9] = 112;
  ipBytes(src).copy(h, 12); ipBytes('224.0.0.18').copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}


async function capture(vhid: number, count: number, timeoutMs: number): Promise<void> {
  const fd = native.openRawIp({ proto: 112, ifname, group: '224.0.0.18', ttl: 255 });
  const buf = new Uint8Array(2048);
  const end = Date.now() + timeoutMs;
  let got = 0;
  while (got < count && Date.now() < end) {
    const n = native.recvInto(fd, buf);
    if (n < 0) { await sleep(5); continue; }
    const ihl = (buf[0] & 0xf) * 4;
    if (buf[ihl + 1] !== vhid) continue;
    process.stdout.write(Buffer.from(buf.subarray(ihl, Math.min(n, buf.length))).toString('hex') + '\n');
    got++;
  }
  native.close(fd);
  if (got < count) { process.stderr.write(`captured ${got} of ${count} adverts of vhid ${vhid}\n`); process.exit(1); }
}

async function send(src: string, everyMs: number, forMs: number, hexes: string[]): Promise<void> {
  const { index } = native.ifInfo(ifname);
  const fd = native.openPacket(ifname, 0x0800);
  const pkts = hexes.map((h) => datagram(Buffer.from(h, 'hex'), src));
  const start = Date.now();
  let sent = 0;
  // Paced by the schedule, not by the timer's granularity: at 1 ms that is ~1,000/s.
  for (let i = 0; i < 1_000_000 && Date.now() - start < forMs; i++) {
    const due = Math.min(1_000_000, Math.floor((Date.now() - start) / everyMs) + 1);
    while (sent < due) { native.sendPacket(fd, index, CARP_MAC, 0x0800, pkts[sent % pkts.length]); sent++; }
    await sleep(Math.max(1, Math.min(everyMs, 20)));
  }
  native.close(fd);
  process.stdout.write(`${sent}\n`);
}

if (verb === 'capture') await capture(Number(args[0]), Number(args[1]), Number(args[2]));
else if (verb === 'send') await send(args[0], Number(args[1]), Number(args[2]), args.slice(3));
else { process.stderr.write('usage: attacker.ts IFNAME capture VHID COUNT TIMEOUT_MS | send SRC EVERY_MS FOR_MS HEX...\n'); process.exit(2); }
