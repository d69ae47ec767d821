#!/usr/bin/env python3
# The chaos harness's sync-link reordering, run in the board's synccable namespace: a TAP device that is a
# port of the sync cable's bridge (learning and flooding off, so the bridge never sends it anything by itself).
# nftables' netdev ingress rules on the cable's ports send a numgen-chosen share of the frames to this TAP
# (`fwd to`); each is held for a random delay and written back, so the bridge forwards it to its destination
# behind frames sent after it: reordering, which this kernel cannot do without netem.
#   reorder.py IFNAME MIN_MS MAX_MS SEED     (runs until SIGTERM; at most 4096 frames held)
import fcntl, os, random, select, signal, struct, sys, time

TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
name, lo, hi, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TAP | IFF_NO_PI))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print('ready', flush=True)
held = []  # (due, frame)
while True:
    now = time.monotonic()
    held.sort(key=lambda h: h[0])
    while held and held[0][0] <= now:
        os.write(fd, held.pop(0)[1])
    timeout = max(0.0, held[0][0] - now) if held else 1.0
    r, _, _ = select.select([fd], [], [], timeout)
    if r:
        frame = os.read(fd, 65536)
        if len(held) < 4096:
            held.append((time.monotonic() + rng.uniform(lo, hi) / 1000.0, frame))
