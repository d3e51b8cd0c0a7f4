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


# ---- blkback: header (flags, flags2, sectors u16), then commands ------------
# flags2: indirect limit 0 = 256, 1 = none, 2 = fuzzed (one more byte), 3 = 12;
# 4 = 4 KiB logical sectors; 8 = discard offered.
def bb_req(op, nseg, rid, sector, segs, big=False, wide=False):
    sel = (1 if big else 0) | (2 if wide else 0)
    b = bytes([1, sel, op, nseg]) + struct.pack("<Q", rid)
    b += struct.pack("<Q", sector) if big else struct.pack("<H", sector)
    for gref, first, last in segs:
        b += struct.pack("<I", gref) if wide else bytes([gref])
        b += bytes([first | (last << 4)])
    return b


def bb_ind(iop, nseg, rid, sector, segs, wide=False):
    """BLKIF_OP_INDIRECT: descriptors go into the fake guest's descriptor
    pages; segs lists the first ones given, the rest repeat the last with
    the next gref (so 256 segments take a few bytes)."""
    sel = 4 | (2 if wide else 0)
    b = bytes([1, sel, iop]) + struct.pack("<H", nseg) + struct.pack("<Q", rid)
    b += struct.pack("<H", sector) + bytes([len(segs)])
    for gref, first, last in segs:
        b += struct.pack("<I", gref) if wide else bytes([gref])
        b += bytes([first | (last << 4)])
    return b


def bb_hdr(flags, sectors, flags2=0):
    return bytes([flags, flags2]) + struct.pack("<H", sectors)


EVENT, COMPLETE_ALL, LOOP, CONSUME = b"\x04", b"\x06", b"\x07", b"\x09"
full = [(i + 1, 0, 7) for i in range(11)]
bb = []
for flags in (0x00, 0x01, 0x02, 0x10, 0x08):   # native, x86_32, order 1, sync, readonly
    s = bb_hdr(flags, 2047)
    s += bb_req(0, 1, 1, 0, [(1, 0, 7)])        # read one page
    s += bb_req(1, 11, 2, 8, full)               # write 11 pages
    s += bb_req(3, 0, 3, 0, [])                  # flush
    s += bb_req(3, 2, 4, 100, [(3, 0, 7), (4, 0, 3)])  # flush with data
    s += EVENT + COMPLETE_ALL + LOOP + CONSUME
    bb.append(s)
# bounds: last sector, one past it, bad sectors in a segment, 12 segments
s = bb_hdr(0, 63)
s += bb_req(0, 1, 5, 56, [(1, 0, 7)]) + bb_req(0, 1, 6, 57, [(1, 0, 7)])
s += bb_req(0, 1, 7, 0, [(1, 7, 0)]) + bb_req(1, 12, 8, 0, full)
s += bb_req(5, 0, 9, 0, []) + bb_req(6, 1, 10, 0, [(1, 0, 7)])
s += EVENT + COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# producer index far ahead: the ring is broken, disconnect
s = bb_hdr(0, 100) + bb_req(0, 1, 1, 0, [(1, 0, 7)])
s += EVENT + b"\x03" + struct.pack("<I", 0x10000) + EVENT + LOOP + b"\x05\x00" + LOOP + CONSUME
bb.append(s)
# grant map failure, then recovery
s = bb_hdr(0, 100) + b"\x88\x00" + bb_req(1, 2, 1, 0, [(1, 0, 7), (2, 0, 7)])
s += EVENT + b"\x08\x00" + bb_req(1, 2, 2, 0, [(1, 0, 7), (2, 0, 7)]) + EVENT + COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# persistent grants (flag 0x80): fill the 1056-entry cache with distinct
# grefs, keep the most recent ones busy, then force evictions
s = bb_hdr(0x80, 60000)
for i in range(97):
    s += bb_req(1, 11, i, 0, [(1000 + 11 * i + j, 0, 7) for j in range(11)], wide=True)
    s += EVENT + COMPLETE_ALL
s += bb_req(1, 11, 500, 0, [(1000 + 11 * 95 + j, 0, 7) for j in range(11)], wide=True) + EVENT
s += bb_req(1, 11, 501, 0, [(50000 + j, 0, 7) for j in range(11)], wide=True) + EVENT
s += b"\x05\x00" + bb_req(1, 11, 502, 0, [(50000 + j, 0, 7) for j in range(11)], wide=True) + EVENT
s += COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# seed-09: indirect descriptors (limit 256): a 256-segment write and read,
# 12 partial segments, then hostile ones: indirect_op flush, 0 and 257
# segments, a bad descriptor, an ungranted descriptor page (wide grefs)
for flags in (0x00, 0x01, 0x80):   # native, x86_32, persistent
    s = bb_hdr(flags, 4096)
    s += bb_ind(1, 256, 1, 0, [(1, 0, 7)]) + EVENT + COMPLETE_ALL
    s += bb_ind(0, 256, 2, 2048, [(1, 0, 7)]) + EVENT + COMPLETE_ALL
    s += bb_ind(1, 12, 3, 100, [(7, 1, 6)]) + EVENT
    s += bb_ind(3, 12, 4, 0, [(1, 0, 7)]) + bb_ind(0, 0, 5, 0, [])
    s += bb_ind(0, 257, 6, 0, [(1, 0, 7)]) + bb_ind(0, 20, 7, 0, [(1, 0, 7), (2, 5, 4)])
    s += EVENT + COMPLETE_ALL + LOOP + CONSUME
    bb.append(s)
# seed-12: 4 KiB logical sectors, indirect limit 12, discard: aligned and
# misaligned reads, writes, indirect requests and discards
def bb_raw_discard(slot, rid, sector, n, flag=0, x86_32=False):
    # command 0: raw bytes into a ring slot (112 bytes native, 108 x86_32)
    if x86_32:
        e = bytes([5, flag, 0, 0]) + struct.pack("<QQQ", rid, sector, n)
        size = 108
    else:
        e = bytes([5, flag]) + b"\0" * 6 + struct.pack("<QQQ", rid, sector, n)
        size = 112
    return b"\x00" + bytes([slot]) + e + b"\0" * (size - len(e))


s = bb_hdr(0x00, 4096, 0x3 | 0x4 | 0x8)
s += bb_req(0, 1, 1, 8, [(1, 0, 7)]) + bb_req(0, 1, 2, 9, [(1, 0, 7)]) + bb_req(1, 1, 3, 8, [(2, 0, 3)])
s += bb_ind(1, 12, 4, 16, [(3, 0, 7)]) + EVENT + COMPLETE_ALL
s += bb_ind(1, 13, 5, 16, [(3, 0, 7)]) + EVENT + COMPLETE_ALL
# discards (raw slots 5 and 6, then req_prod = produced + 2): aligned, misaligned
s += bb_raw_discard(5, 6, 8, 16) + bb_raw_discard(6, 7, 4, 8) + b"\x02\x02" + EVENT
s += COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# seed-13..14: BLKIF_OP_WRITE_BARRIER (feature-barrier): a barrier with
# data behind two writes still in flight (intake stops at it; it is issued
# once alone), a write behind it, completions one at a time and out of
# order; an empty barrier; a barrier at the last sector and one past the
# end.  Native, then x86_32 with synchronous completions.
BARRIER = 2


def cmd(c, flag=False):
    """Command byte: the harness takes op % 12, and op & 0x80 as a flag."""
    return bytes([(0x80 | (c - 8) % 12) if flag else c])


def complete_one(i, err=False):
    # i % 12 == 7: were nothing in flight (the index byte is then not
    # read), it is a harmless LOOP
    assert i % 12 == 7
    return cmd(5, err) + bytes([i])


for flags in (0x00, 0x01 | 0x10):
    s = bb_hdr(flags, 2047)
    s += bb_req(1, 2, 1, 0, [(1, 0, 7), (2, 0, 7)]) + bb_req(1, 1, 2, 16, [(3, 0, 7)]) + EVENT
    s += bb_req(BARRIER, 2, 3, 32, [(4, 0, 7), (5, 0, 7)]) + bb_req(1, 1, 4, 48, [(6, 0, 7)])
    s += EVENT + LOOP + complete_one(7) + LOOP + complete_one(43) + LOOP
    s += complete_one(7) + LOOP + EVENT + COMPLETE_ALL + LOOP + CONSUME
    s += bb_req(BARRIER, 0, 5, 0, []) + EVENT + LOOP + COMPLETE_ALL + LOOP
    s += bb_req(BARRIER, 1, 6, 2040, [(7, 0, 7)]) + bb_req(BARRIER, 1, 7, 2041, [(7, 0, 7)])
    s += EVENT + LOOP + complete_one(7, err=True) + LOOP + EVENT + COMPLETE_ALL + LOOP + CONSUME
    bb.append(s)
# seed-15: barriers with persistent grants and indirect requests around
# them (grefs not shared between requests in flight, as a frontend's
# never are): an indirect write, a barrier, an indirect read behind it; a
# pause while the barrier waits; a barrier whose persistent map fails
# (mapped per request instead).
s = bb_hdr(0x80, 4096)
s += bb_ind(1, 64, 1, 0, [(1, 0, 7)]) + EVENT
s += bb_req(BARRIER, 1, 2, 512, [(200, 0, 7)], wide=True) + bb_ind(0, 64, 3, 0, [(100, 0, 7)]) + EVENT
s += cmd(10, flag=True) + LOOP + COMPLETE_ALL + LOOP + cmd(10) + LOOP + EVENT + COMPLETE_ALL + LOOP
s += b"\x08\x01" + bb_req(BARRIER, 2, 4, 8, [(210, 0, 7), (211, 0, 7)], wide=True) + EVENT
s += b"\x08\x00" + LOOP + COMPLETE_ALL + LOOP + CONSUME
bb.append(s)
# seed-16..18: discard (feature-discard): aligned, the last sectors, past
# the end, zero and huge lengths, BLKIF_DISCARD_SECURE (discard-secure is
# not offered); native offered, x86_32 offered on a read-only disk, and
# native not offered.  Raw ring slots, published together at the end
# (command 2: req_prod = ours + n).
for flags, flags2, x32 in ((0x00, 0x8, False), (0x01 | 0x08, 0x8, True), (0x00, 0x0, False)):
    s = bb_hdr(flags, 1023, flags2)
    s += bb_raw_discard(0, 1, 0, 64, x86_32=x32) + bb_raw_discard(1, 2, 1000, 24, x86_32=x32)
    s += bb_raw_discard(2, 3, 1000, 25, x86_32=x32) + bb_raw_discard(3, 4, 2000, 8, x86_32=x32)
    s += bb_raw_discard(4, 5, 8, 0, x86_32=x32) + bb_raw_discard(5, 6, 0, 2 ** 63, x86_32=x32)
    s += bb_raw_discard(6, 7, 16, 8, flag=1, x86_32=x32)
    s += b"\x02\x07" + EVENT + LOOP + complete_one(7) + COMPLETE_ALL + LOOP + CONSUME
    bb.append(s)
# seed-19: indirect requests with a fuzzed limit of 12+1 (flags2 = 2, its
# byte before the size), 4 KiB sectors: 13 segments written and read back,
# 14 refused, indirect_op garbage, an indirect write queued behind an
# empty barrier; then indirect_op WRITE_BARRIER and DISCARD, which the
# structured command cannot make (it keeps indirect_op to read/write
# below 200), as raw slots.  Each request is answered before the next is
# put: they share the guest's descriptor pages, which the harness
# scribbles over during submit.
def bb_raw_indirect(slot, iop, nseg, rid, sector):
    e = bytes([6, iop]) + struct.pack("<H", nseg) + b"\0" * 4
    e += struct.pack("<QQ", rid, sector) + b"\0" * 4
    e += b"".join(struct.pack("<I", 0x80000 + k) for k in range(8))
    return b"\x00" + bytes([slot]) + e + b"\0" * (112 - len(e))


s = bytes([0x00, 0x2 | 0x4, 12]) + struct.pack("<H", 4096)
s += bb_ind(1, 13, 1, 8, [(1, 0, 7)]) + EVENT + COMPLETE_ALL
s += bb_ind(0, 13, 2, 8, [(1, 0, 7)]) + EVENT + COMPLETE_ALL
s += bb_ind(0, 14, 3, 8, [(1, 0, 7)]) + EVENT + COMPLETE_ALL
s += bb_ind(0xff, 8, 4, 0, [(1, 0, 7)]) + EVENT + COMPLETE_ALL
s += bb_req(BARRIER, 0, 5, 0, []) + bb_ind(1, 8, 6, 16, [(20, 0, 7)])
s += EVENT + LOOP + COMPLETE_ALL + LOOP + EVENT + COMPLETE_ALL + LOOP + CONSUME
s += bb_raw_indirect(6, BARRIER, 8, 7, 0) + bb_raw_indirect(7, 5, 8, 8, 0)
s += b"\x02\x02" + EVENT + LOOP + COMPLETE_ALL + LOOP + CONSUME
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
# seed-06: indirect descriptors (third byte 0x80 | slots: ours 64, the
# backend 4096), 4 KiB sectors; big writes and reads (op byte 0x20: 16-bit
# units) go as indirect requests; a restart offers 12 segments
def bf_big(k, op, sector, units):
    return bytes([0, k, op | 0x20]) + struct.pack("<H", sector) + struct.pack("<H", units)


s = bytes([0x88]) + struct.pack("<H", 8192) + bytes([0x80 | 0x40 | 8]) + ANSWER * 4
s += bf_big(0, 1, 0, 64) + POLL + ANSWER + POLL + ANSWER
s += bf_big(1, 0, 0, 64) + POLL + ANSWER + POLL + ANSWER
s += bf_big(2, 1, 512, 200) + bf_big(3, 1, 2048, 200) + POLL + ANSWER
s += POLL + b"\x06\x00\x01" + (POLL + ANSWER) * 30
bf.append(s)


# seed-07..08: multi-queue (the frontend may use 4 queues).  Command bytes
# restart the backend with another multi-queue-max-queues (fuzz_blkfront.c
# mq_restart_cmd; each a no-op as a backend move, so said twice it happens
# once or twice, whether the stream is at a command or a move): offers of
# 4, 2, none (one ring again, the queue-N keys removed), garbage; then 16,
# 3, 0, 4; I/O spread over the queues in between, answered on their
# rings.  A 0x01 byte is both a poll (command) and an answer (move); SYNC
# (a no-op either way) said twice puts the stream at a command.
SYNC = bytes([178])
MQ_RESTART = {None: 248, 1: 238, 2: 239, 4: 229, 16: 218, 0: 208, "x": 209, 3: 188}
for hdr, offers in ((0x08, (4, 2, None, "x")), (0x0a, (16, 3, 0, 4))):
    s = bytes([hdr]) + struct.pack("<H", 4096) + bytes([16]) + ANSWER * 4
    s += bf_submit(0, 1, 0, 8) + POLL + ANSWER + POLL + ANSWER
    for j, offer in enumerate(offers):
        s += POLL * 16 + bytes([MQ_RESTART[offer]]) * 2 + POLL * 16
        s += SYNC * 2        # at a command now, whatever the reconnect read
        for k in range(8):   # slots 0-7 and 8-15 by turns: none still busy
            s += bf_submit(8 * (j % 2) + k, (k + j) % 3, 64 * k + 8 * j, 8)
        s += POLL * 80
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

# ---- netback: header (grant limit), then commands (fuzz_netback.c) ---------
def nb_slot(gref, off, flags, rid, size, publish=True):
    """A data slot: a gref of the fake guest's 32 pages and an offset that
    is a multiple of 16 use the short forms."""
    op = 1 | (0 if publish else 0x80)
    if gref >= 32:
        op |= 0x10
    if off % 16 or off > 255 * 16:
        op |= 0x20
    b = bytes([op])
    b += struct.pack("<I", gref) if op & 0x10 else bytes([gref])
    b += struct.pack("<H", off) if op & 0x20 else bytes([off // 16])
    return b + bytes([flags]) + struct.pack("<HH", rid, size)


def nb_extra_gso(mss, v6=False, more=False, publish=True):
    return bytes([2 | (0 if publish else 0x80), 1, 1 if more else 0]) + struct.pack("<H", mss) + bytes([2 if v6 else 1])


def nb_page(g, off, data):
    out = b""
    while data:
        chunk, data = data[:255], data[255:]
        out += bytes([6, g, len(chunk)]) + struct.pack("<H", off) + chunk
        off += len(chunk)
    return out


def nb_packet(total, frags, first=(0, 0), flags=0, gso=None, rid=1):
    """cmd 9: first slot on page first[0] at offset first[1] (a multiple
    of 8), optional GSO extra (mss, v6), fragments (gref, off8, size)."""
    fl = flags & 3
    if gso:
        fl |= 4 | (8 if gso[1] else 0)
    b = bytes([9, len(frags), fl]) + struct.pack("<HH", total, rid) + bytes([first[0], first[1] // 8])
    if gso:
        b += struct.pack("<H", gso[0])
    for g, off, size in frags:
        b += bytes([g, off // 8]) + struct.pack("<H", size)
    return b


def ipv4_tcp(payload):
    eth = bytes([0x00, 0x16, 0x3e, 0, 0, 2, 0x00, 0x16, 0x3e, 0, 0, 1, 0x08, 0x00])
    ip = bytes([0x45, 0]) + struct.pack(">H", 20 + 20 + payload) + bytes([0, 1, 0x40, 0, 64, 6, 0, 0,
                                                                          10, 0, 0, 2, 10, 0, 0, 1])
    tcp = struct.pack(">HHIIBBHHH", 40000, 5201, 1, 0, 0x50, 0x18, 65535, 0, 0)
    return eth + ip + tcp


def ipv6_tcp(payload):
    eth = bytes([0x00, 0x16, 0x3e, 0, 0, 2, 0x00, 0x16, 0x3e, 0, 0, 1, 0x86, 0xdd])
    ip = bytes([0x60, 0, 0, 0]) + struct.pack(">H", 20 + payload) + bytes([6, 64]) + \
        bytes([0xfd] + [0] * 14 + [2]) + bytes([0xfd] + [0] * 14 + [1])
    tcp = struct.pack(">HHIIBBHHH", 40000, 5201, 1, 0, 0x50, 0x18, 65535, 0, 0)
    return eth + ip + tcp


KICK, RSP = b"\x04", b"\x05"
CSUM_BLANK, MORE, EXTRA = 1, 4, 8
nb = []
# a 60-byte frame in one slot, then 3-slot and 18-slot frames (the limit)
s = bytes([0]) + nb_slot(0, 0, 0, 1, 60) + KICK + RSP
s += nb_packet(3000, [(1, 0, 1000), (2, 0, 1000)], rid=10) + KICK + RSP
s += nb_packet(18 * 200, [(i % 32, 8 * i, 200) for i in range(1, 18)], rid=20) + KICK + RSP
nb.append(s)
# IPv4/TCP with csum_blank; then a GSO TCPv4 frame of 3 slots
s = bytes([0]) + nb_page(1, 0, ipv4_tcp(100))
s += nb_slot(1, 0, CSUM_BLANK, 1, 54 + 100) + KICK + RSP
s += nb_page(2, 0, ipv4_tcp(2946))
s += nb_packet(3000, [(3, 0, 1500), (4, 0, 1000)], first=(2, 0), flags=CSUM_BLANK, gso=(1448, False), rid=5)
s += KICK + RSP
nb.append(s)
# IPv6/TCP with csum_blank and GSO TCPv6
s = bytes([0]) + nb_page(5, 0, ipv6_tcp(200))
s += nb_slot(5, 0, CSUM_BLANK, 7, 74 + 200) + KICK + RSP
s += nb_page(6, 64, ipv6_tcp(4000))
s += nb_packet(4074, [(7, 0, 2000), (8, 0, 1000)], first=(6, 64), flags=CSUM_BLANK, gso=(1400, True), rid=9)
s += KICK + RSP
nb.append(s)
# drops: 19 slots, a fragment past the size, a zero fragment, a split
# header, a page crossing, a runt, an ungranted gref; each then a good one
s = bytes([0])
s += nb_packet(19 * 60, [(1, 0, 60)] * 18, rid=100) + KICK
s += nb_packet(200, [(1, 0, 300)], rid=120) + KICK
s += nb_packet(100, [(1, 0, 0), (2, 0, 40)], rid=130) + KICK
s += nb_packet(60, [(1, 0, 50)], rid=140) + KICK
s += nb_slot(1, 4090, 0, 150, 60) + KICK
s += nb_slot(1, 0, 0, 160, 13) + KICK
s += nb_slot(200, 0, 0, 170, 60) + KICK
s += nb_slot(0, 0, 0, 180, 60) + KICK + RSP
nb.append(s)
# protocol breaches: 20 slots; an extra-info of type NONE; a producer past
# the ring; each followed by a reconnect and a good frame
RECONNECT = b"\x08"
s = bytes([0]) + nb_packet(20 * 60, [(1, 0, 60)] * 19, rid=1) + KICK + RECONNECT
s += nb_slot(0, 0, 0, 2, 60) + KICK
s += nb_slot(0, 0, EXTRA, 3, 60) + bytes([2, 0, 0, 0, 0, 0]) + KICK + RECONNECT
s += nb_slot(0, 0, 0, 4, 60) + KICK
s += b"\x83" + struct.pack("<I", 300) + KICK + RECONNECT + nb_slot(0, 0, 0, 5, 60) + KICK + RSP
nb.append(s)
# a chain pushed in two parts, a partial chain across events, and 40
# one-slot frames in one event (more than one batch of 32)
s = bytes([0])
s += nb_slot(0, 0, MORE, 1, 600, publish=False) + nb_slot(1, 0, MORE, 2, 100, publish=False)
s += b"\x03\x00" + KICK
s += nb_slot(2, 0, MORE, 3, 100) + nb_slot(3, 0, 0, 4, 100) + KICK + RSP
for i in range(40):
    s += nb_slot(i % 32, 16 * i, 0, 1000 + i, 60 + i, publish=False)
s += b"\x03\x00" + KICK + RSP
nb.append(s)
# grants: the copy call fails, a grant revoked, a limit of 4 granted pages
s = bytes([0x84]) + nb_slot(0, 0, 0, 1, 60) + nb_slot(5, 0, 0, 2, 60) + KICK
s += b"\x87" + nb_slot(0, 0, 0, 3, 60) + KICK + b"\x87" + b"\x07\x20" + nb_slot(9, 0, 0, 4, 60) + KICK + RSP
nb.append(s)
# a rate limit (header bit 0x40: 1 + 4 * 400 = 1601 bytes per 1000 us):
# ten 600-byte frames, most held for credit; then intervals pass (0x0a)
TIME = b"\x0a"
s = bytes([0x40]) + struct.pack("<HH", 400, 999)
for i in range(10):
    s += nb_slot(i % 32, 0, 0, 100 + i, 600, publish=False)
s += b"\x03\x00" + KICK + RSP
for k in range(6):
    s += TIME + bytes([k % 4]) + KICK + RSP
nb.append(s)
out("netback", nb)
