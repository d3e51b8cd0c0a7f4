#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz (run from anywhere; idempotent).

Seeds are small valid sessions in each harness's input language (see the
comment at the top of each fuzz_*.c): the fuzzer mutates from there.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def out(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(s)


# ---- blkback: header (flags, sectors u16), then commands -------------------
def bb_req(op, nseg, rid, sector, segs, big=False, wide=False):
    sel = (1 if big else 0) | (2 if wide else 0)
    b = bytes([1, sel, op, nseg]) + struct.pack("<Q", rid)
    b += struct.pack("<Q", sector) if big else struct.pack("<H", sector)
    for gref, first, last in segs:
        b += struct.pack("<I", gref) if wide else bytes([gref])
        b += bytes([first | (last << 4)])
    return b


EVENT, COMPLETE_ALL, LOOP, CONSUME = b"\x04", b"\x06", b"\x07", b"\x09"
full = [(i + 1, 0, 7) for i in range(11)]
bb = []
for flags in (0x00, 0x01, 0x02, 0x10, 0x08):   # native, x86_32, order 1, sync, readonly
    s = bytes([flags]) + struct.pack("<H", 2047)
    s += bb_req(0, 1, 1, 0, [(1, 0, 7)])        # read one page
    s += bb_req(1, 11, 2, 8, full)               # write 11 pages
    s += bb_req(3, 0, 3, 0, [])                  # flush
    s += bb_req(3, 2, 4, 100, [(3, 0, 7), (4, 0, 3)])  # flush with data
    s += EVENT + COMPLETE_ALL + LOOP + CONSUME
    bb.append(s)
# bounds: last sector, one past it, bad sectors in a segment, 12 segments
s = bytes([0]) + struct.pack("<H", 63)
s += bb_req(0, 1, 5, 56, [(1, 0, 7)]) + bb_req(0, 1, 6, 57, [(1, 0, 7)])
s += bb_req(0, 1, 7, 0, [(1, 7, 0)]) + bb_req(1, 12, 8, 0, full)
s += bb_req(5, 0, 9, 0, []) + bb_req(6, 1, 10, 0, [(1, 0, 7)])
s += EVENT + COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# producer index far ahead: the ring is broken, disconnect
s = bytes([0]) + struct.pack("<H", 100) + bb_req(0, 1, 1, 0, [(1, 0, 7)])
s += EVENT + b"\x03" + struct.pack("<I", 0x10000) + EVENT + LOOP + b"\x05\x00" + LOOP + CONSUME
bb.append(s)
# grant map failure, then recovery
s = bytes([0]) + struct.pack("<H", 100) + b"\x88\x00" + bb_req(1, 2, 1, 0, [(1, 0, 7), (2, 0, 7)])
s += EVENT + b"\x08\x00" + bb_req(1, 2, 2, 0, [(1, 0, 7), (2, 0, 7)]) + EVENT + COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# persistent grants (flag 0x80): fill the 1056-entry cache with distinct
# grefs, keep the most recent ones busy, then force evictions
s = bytes([0x80]) + struct.pack("<H", 60000)
for i in range(97):
    s += bb_req(1, 11, i, 0, [(1000 + 11 * i + j, 0, 7) for j in range(11)], wide=True)
    s += EVENT + COMPLETE_ALL
s += bb_req(1, 11, 500, 0, [(1000 + 11 * 95 + j, 0, 7) for j in range(11)], wide=True) + EVENT
s += bb_req(1, 11, 501, 0, [(50000 + j, 0, 7) for j in range(11)], wide=True) + EVENT
s += b"\x05\x00" + bb_req(1, 11, 502, 0, [(50000 + j, 0, 7) for j in range(11)], wide=True) + EVENT
s += COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
out("blkback", bb)

# ---- blkfront: header (flags, sectors u16, max_slots), then commands ------
# command byte % 3 == 0: submit (slot, op, sector u16, units); else poll,
# and every wait of the frontend reads one backend move byte.
def bf_submit(k, op, sector, units):
    return bytes([0, k, op]) + struct.pack("<H", sector) + bytes([units])


ANSWER, POLL = b"\x00", b"\x01"
bf = []
for hdr in (0x08, 0x0a, 0x04, 0x10, 0x00):   # flush order0, order2, order4, barrier, no flush
    s = bytes([hdr]) + struct.pack("<H", 4096) + bytes([8])
    s += ANSWER * 4                           # handshake waits
    s += bf_submit(0, 1, 0, 8) + POLL + ANSWER + POLL + ANSWER
    s += bf_submit(1, 0, 0, 8) + POLL + ANSWER + POLL + ANSWER
    s += bf_submit(2, 2, 0, 0) + POLL + ANSWER + POLL + ANSWER
    s += bf_submit(3, 0, 16, 64) + (POLL + ANSWER) * 8
    bf.append(s)
# error statuses, a restart of the backend, a resize
s = bytes([0x08]) + struct.pack("<H", 4096) + bytes([4]) + ANSWER * 4
s += bf_submit(0, 1, 0, 8) + POLL + b"\x80\x01" + POLL + ANSWER
s += bf_submit(1, 0, 0, 8) + POLL + b"\x06\x00" + POLL + ANSWER * 6 + POLL + ANSWER
s += POLL + b"\x87" + struct.pack("<Q", 8192) + POLL + ANSWER
bf.append(s)
out("blkfront", bf)

# ---- xenstored: commands; 0 = frame (client in bits 2..3), 2 = run+read ---
XS = dict(DIRECTORY=1, READ=2, GET_PERMS=3, WATCH=4, UNWATCH=5, TX_START=6, TX_END=7,
          INTRODUCE=8, RELEASE=9, GET_DOMAIN_PATH=10, WRITE=11, MKDIR=12, RM=13,
          SET_PERMS=14, IS_INTRODUCED=17, RESET_WATCHES=21, DIRECTORY_PART=22)


def frame(client, typ, payload, tx=0):
    big = len(payload) > 255
    t = typ | (0x20 if big else 0)
    b = bytes([client << 2, t, 1, tx]) + bytes([len(payload) & 0xff])
    if big:
        b += bytes([len(payload) >> 8])
    return b + payload


RUN = b"\x02"
xs = []
s = frame(0, XS["WRITE"], b"/local/domain/1/x\x00hello") + RUN
s += frame(0, XS["READ"], b"/local/domain/1/x\x00") + RUN
s += frame(0, XS["SET_PERMS"], b"/local/domain/1/x\x00n1\x00") + RUN
s += frame(1, XS["READ"], b"x\x00") + frame(1, XS["DIRECTORY"], b"/local/domain/1\x00") + RUN
s += frame(1, XS["WATCH"], b"x\x00tok\x00") + frame(0, XS["WRITE"], b"/local/domain/1/x\x00again") + RUN
s += frame(1, XS["GET_PERMS"], b"x\x00") + frame(1, XS["UNWATCH"], b"x\x00tok\x00") + RUN
xs.append(s)
s = frame(1, XS["TX_START"], b"\x00") + RUN + frame(1, XS["WRITE"], b"y\x00v", tx=1)
s += frame(1, XS["MKDIR"], b"d\x00", tx=1) + frame(1, XS["TX_END"], b"T\x00", tx=1) + RUN
s += frame(1, XS["DIRECTORY_PART"], b"/local/domain/1\x000\x00") + frame(1, XS["RM"], b"d\x00") + RUN
xs.append(s)
s = frame(0, XS["INTRODUCE"], b"2\x00100\x007\x00") + RUN + frame(0, XS["IS_INTRODUCED"], b"2\x00")
s += frame(0, XS["GET_DOMAIN_PATH"], b"2\x00") + frame(0, XS["WATCH"], b"@releaseDomain\x00r\x00")
s += frame(0, XS["RELEASE"], b"2\x00") + RUN + frame(0, XS["RESET_WATCHES"], b"") + RUN
xs.append(s)
# a watch flood with a client that does not read (XSA-349)
s = frame(2, XS["WATCH"], b"/local/domain/1\x00t\x00") + RUN + bytes([0x03 | (2 << 2)])
for i in range(40):
    s += frame(1, XS["WRITE"], b"k%d\x00%s" % (i, b"v" * 200))
s += RUN
xs.append(s)
# torn header, then an oversized length: the connection is closed
s = b"\x01\x08" + struct.pack("<IIII", 2, 1, 0, 4)[:8] + b"\x01\x08" + struct.pack("<IIII", 2, 1, 0, 4)[8:]
s += b"\x02" + b"\x01\x10" + struct.pack("<IIII", 2, 1, 0, 100000) + RUN
xs.append(s)
out("xenstored", xs)
