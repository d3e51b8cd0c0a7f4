#!/usr/bin/env python3
"""Check a disk image after a crash against the account `pvblk journal` gave.

    journal-check.py LOG SEED IMAGE REFERENCE [--offset B --length B]

LOG is what `pvblk journal --seed SEED` printed (possibly cut short by a
kill), IMAGE the disk as it is now (a raw file), REFERENCE the disk as it
was before the journal ran.  Inside the journal's range:
  - every write acknowledged before the flush of the last completed flush
    ("ack N" before "fsub F", then "fack F") reads back exactly;
  - every other submitted write's sectors each hold either the old contents
    or that write's own record (a crash may cut a write at a sector
    boundary, never produce anything else);
  - every sector no write touched holds its old contents.
Outside the range the image must equal the reference.  Prints a summary;
exits 1 with the first problems found.
"""
import struct
import sys

SECTOR = 512


def record(seed, seq, sector):
    rec = b"PVIOJRNL" + struct.pack("<QQQ", seed, seq, sector)
    return rec * (SECTOR // len(rec))


def parse(log):
    subs, acked, flushes, done = {}, [], {}, False
    for line in log.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "sub" and len(f) == 4:
            subs[int(f[1])] = (int(f[2]), int(f[3]))
        elif f[0] == "ack" and len(f) == 2:
            acked.append(int(f[1]))
        elif f[0] == "fsub" and len(f) == 2:
            flushes[int(f[1])] = len(acked)  # acks before this flush
        elif f[0] == "fack" and len(f) == 2:
            flushes[int(f[1])] = ("done", flushes[int(f[1])])
        elif f[0] == "done":
            done = True
    durable = 0
    for v in flushes.values():
        if isinstance(v, tuple):
            durable = max(durable, v[1])
    return subs, acked, set(acked[:durable]), done


def main():
    args = sys.argv[1:]
    off = length = None
    if "--offset" in args:
        i = args.index("--offset")
        off = int(args[i + 1])
        del args[i:i + 2]
    if "--length" in args:
        i = args.index("--length")
        length = int(args[i + 1])
        del args[i:i + 2]
    logf, seed, image, ref = args[0], int(args[1]), args[2], args[3]
    subs, acked, durable, done = parse(open(logf).read())
    img = open(image, "rb").read()
    old = open(ref, "rb").read()
    problems = []
    if len(img) != len(old):
        problems.append("image is %d bytes, the reference %d" % (len(img), len(old)))
    if off is None:
        off, length = 0, len(old)
    # which write (if any) may have touched each sector of the range
    owner = {}
    for seq, (at, n) in subs.items():
        for s in range(at // SECTOR, (at + n) // SECTOR):
            if s in owner:
                problems.append("writes %d and %d overlap at sector %d" % (owner[s], seq, s))
            owner[s] = seq
    for seq in sorted(durable):
        at, n = subs[seq]
        want = b"".join(record(seed, seq, s) for s in range(at // SECTOR, (at + n) // SECTOR))
        if img[at:at + n] != want:
            bad = next(i for i in range(0, n, SECTOR) if img[at + i:at + i + SECTOR] != want[i:i + SECTOR])
            problems.append("durable write %d (%d bytes at %d) lost: sector %d holds %s" %
                            (seq, n, at, (at + bad) // SECTOR, img[at + bad:at + bad + 32].hex()))
    torn = 0
    for s in range(off // SECTOR, (off + length) // SECTOR):
        got = img[s * SECTOR:(s + 1) * SECTOR]
        was = old[s * SECTOR:(s + 1) * SECTOR]
        seq = owner.get(s)
        if seq is None or seq in durable:
            if seq is None and got != was:
                problems.append("sector %d, which no write touched, changed" % s)
            continue
        if got != was and got != record(seed, seq, s):
            problems.append("sector %d of write %d (in flight at the crash) holds neither the old "
                            "data nor the write's: %s" % (s, seq, got[:32].hex()))
        elif got != was:
            torn += 1
    if img[:off] != old[:off] or img[off + length:] != old[off + length:]:
        problems.append("the image changed outside the journal's range")
    print("journal: %d writes submitted, %d acknowledged, %d durable; %d sectors of "
          "undurable writes landed%s" % (len(subs), len(acked), len(durable), torn,
                                          "; the writer finished" if done else ""))
    for p in problems[:10]:
        print("PROBLEM:", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
