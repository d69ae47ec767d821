// Sends raw proto-112 datagrams from inside a namespace (run with `ip netns exec NS node --import tsx`):
//   inject.ts IFNAME TTL HEX [HEX...]   — each HEX is a CARP payload; the kernel adds the IPv4 header.
import { native } from '../../host/io/native.js';

const [ifname, ttl, ...hexes] = process.argv.slice(2);
const fd = native.openRawIp({ proto: 112, ifname, group: '224.0.0.18', ttl: Number(ttl), tos: 0x10 });
for (const h of hexes) native.sendTo(fd, Buffer.from(h, 'hex'), '224.0.0.18');
native.close(fd);
