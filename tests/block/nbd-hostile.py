#!/usr/bin/env python3
# Hostile NBD clients against tapdisk's NBD export (see nbd-hostile.sh).
# usage: nbd-hostile.py SOCKET IMAGE OUT
# IMAGE is the raw file tapdisk serves; [0, 8 MiB) of it is never written
# by anyone while this runs, so reads there are checked against the file.
# A well-behaved client stays connected through everything and must keep
# getting right answers; every hostile client must get the answer the NBD
# spec asks for (an error reply and a kept connection, or a disconnect).
# At the end the good client writes 256 KiB at 40 MiB and saves it to OUT,
# for the guest to read back.
import os
import socket
import struct
import sys

SOCK, IMG = sys.argv[1], sys.argv[2]
SIZE = os.path.getsize(IMG)
MB = 1024 * 1024
with open(IMG, "rb") as f:
    IMAGE_HEAD = f.read(8 * MB)

NBDMAGIC, IHAVEOPT = 0x4E42444D41474943, 0x49484156454F5054
REP_MAGIC, REQ_MAGIC = 0x0003E889045565A9, 0x25609513
SIMPLE, STRUCT = 0x67446698, 0x668E33EF
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_STRUCTURED, OPT_LIST_META, OPT_SET_META = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_INVALID, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG = ERR | 1, ERR | 3, ERR | 6, ERR | 9
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_BS = 0, 1, 2, 3, 4, 7
EPERM, EINVAL, ENOSPC, EOVERFLOW = 1, 22, 28, 75

checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit("FAIL: " + what)
    checks += 1


class Conn:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)  # a hang becomes a failure
        self.s.connect(SOCK)
        self.structured = False
        self.cookie = 100

    def rd(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("server closed the connection")
            b += c
        return b

    def send(self, b):
        self.s.sendall(b)

    def closed_by_server(self):
        """True if the server hangs up (EOF, or a reset) without sending more."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def hello(self, flags=3):
        magic, opt, hs = struct.unpack(">QQH", self.rd(18))
        check(magic == NBDMAGIC and opt == IHAVEOPT, "greeting magic")
        check(hs & 1, "fixed newstyle offered")
        self.send(struct.pack(">I", flags))

    def opt(self, o, data=b""):
        self.send(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)

    def replies(self, o):
        """Option replies up to the final one: [(type, data)]."""
        out = []
        while True:
            magic, ro, rt, ln = struct.unpack(">QIII", self.rd(20))
            check(magic == REP_MAGIC and ro == o, "option reply header (option %d)" % o)
            out.append((rt, self.rd(ln)))
            if rt == REP_ACK or rt & ERR:
                return out

    def go(self, structured=True, meta=True, name=b""):
        if structured:
            self.opt(OPT_STRUCTURED)
            check(self.replies(OPT_STRUCTURED)[-1][0] == REP_ACK, "structured replies")
            self.structured = True
        if meta:
            q = b"base:allocation"
            self.opt(OPT_SET_META, struct.pack(">I", len(name)) + name +
                     struct.pack(">II", 1, len(q)) + q)
            r = self.replies(OPT_SET_META)
            check([t for t, _ in r] == [REP_META, REP_ACK], "SET_META_CONTEXT base:allocation")
        self.opt(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, 3))
        r = self.replies(OPT_GO)
        check(r[-1][0] == REP_ACK, "GO: %r" % (r,))
        info = [d for t, d in r if t == REP_INFO and struct.unpack(">H", d[:2])[0] == 0][0]
        size, flags = struct.unpack(">QH", info[2:12])
        check(size == SIZE - SIZE % 512, "export size %d" % size)
        return flags

    def request(self, cmd, off, ln, flags=0, payload=b"", magic=REQ_MAGIC):
        self.cookie += 1
        self.send(struct.pack(">IHHQQI", magic, flags, cmd, self.cookie, off, ln) + payload)
        return self.cookie

    def reply(self):
        """One whole reply: (cookie, error, data-or-None, chunks)."""
        magic = struct.unpack(">I", self.rd(4))[0]
        if magic == SIMPLE:
            err, cookie = struct.unpack(">IQ", self.rd(12))
            return cookie, err, None, []
        check(magic == STRUCT, "reply magic %#x" % magic)
        chunks, err, cookie = [], 0, None
        while True:
            fl, ty, ck, ln = struct.unpack(">HHQI", self.rd(16))
            payload = self.rd(ln)
            cookie = ck if cookie is None else cookie
            check(ck == cookie, "chunks of one reply share its cookie")
            chunks.append((ty, payload))
            if ty & 0x8000:
                err = struct.unpack(">I", payload[:4])[0]
            if fl & 1:
                return cookie, err, None, chunks
            magic = struct.unpack(">I", self.rd(4))[0]
            check(magic == STRUCT, "chunk magic")

    def read(self, off, ln):
        ck = self.request(CMD_READ, off, ln)
        if not self.structured:
            cookie, err, _, _ = self.reply()
            check(cookie == ck and err == 0, "simple read error %d" % err)
            return self.rd(ln)
        cookie, err, _, chunks = self.reply()
        check(cookie == ck and err == 0, "structured read error %d" % err)
        buf = bytearray(ln)
        covered = 0
        for ty, p in chunks:
            if ty == 1:  # OFFSET_DATA
                o = struct.unpack(">Q", p[:8])[0] - off
                buf[o:o + len(p) - 8] = p[8:]
                covered += len(p) - 8
            elif ty == 2:  # OFFSET_HOLE: zeros
                o, hl = struct.unpack(">QI", p)
                covered += hl
        check(covered == ln, "read chunks cover the request")
        return bytes(buf)

    def expect_error(self, ck, err, what):
        cookie, e, _, chunks = self.reply()
        check(cookie == ck, what + ": cookie")
        check(e == err, "%s: error %d, want %d" % (what, e, err))
        if chunks:
            check(len(chunks) == 1 and chunks[0][0] == 0x8001, what + ": one error chunk")


def hostile(name, fn):
    fn()
    print("ok:", name)


# ---- the good client, connected throughout ------------------------------------
good = Conn()
good.hello()
flags = good.go()
check(flags & 1 and flags & 4 and not flags & 2, "transmission flags %#x" % flags)
check(good.read(0, MB) == IMAGE_HEAD[:MB], "good client: first read")


def bad_client_flags():
    c = Conn()
    c.hello(flags=0x80)
    check(c.closed_by_server(), "unknown client flags: disconnect")


def bad_option_magic():
    c = Conn()
    c.hello()
    c.send(b"NOTMAGIC" + struct.pack(">II", OPT_GO, 0))
    check(c.closed_by_server(), "bad option magic: disconnect")


def options():
    c = Conn()
    c.hello()
    c.opt(0x1234, b"x" * 10)
    check(c.replies(0x1234)[-1][0] == REP_ERR_UNSUP, "unknown option: ERR_UNSUP")
    c.opt(OPT_STARTTLS)
    check(c.replies(OPT_STARTTLS)[-1][0] == REP_ERR_UNSUP, "STARTTLS: ERR_UNSUP")
    c.opt(OPT_GO, b"y" * 100000)  # longer than any sane option
    check(c.replies(OPT_GO)[-1][0] == REP_ERR_TOO_BIG, "oversized option: ERR_TOO_BIG")
    c.opt(OPT_LIST, b"junk")
    check(c.replies(OPT_LIST)[-1][0] == REP_ERR_INVALID, "LIST with data: ERR_INVALID")
    c.opt(OPT_LIST)
    r = c.replies(OPT_LIST)
    check([t for t, _ in r] == [REP_SERVER, REP_ACK], "LIST: one export")
    c.opt(OPT_SET_META, struct.pack(">II", 0, 0))
    check(c.replies(OPT_SET_META)[-1][0] == REP_ERR_INVALID, "meta context before structured: ERR_INVALID")
    c.opt(OPT_GO, struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0))
    check(c.replies(OPT_GO)[-1][0] == REP_ERR_UNKNOWN, "GO unknown export: ERR_UNKNOWN")
    c.opt(OPT_INFO, struct.pack(">I", 0xFFFFFFF0) + b"\0\0")
    check(c.replies(OPT_INFO)[-1][0] == REP_ERR_INVALID, "INFO name longer than the option: ERR_INVALID")
    c.opt(OPT_INFO, struct.pack(">IH", 0, 5))  # claims 5 requests, has none
    check(c.replies(OPT_INFO)[-1][0] == REP_ERR_INVALID, "INFO request count mismatch: ERR_INVALID")
    c.opt(OPT_STRUCTURED)
    c.replies(OPT_STRUCTURED)
    c.opt(OPT_LIST_META, struct.pack(">II", 0, 3) + struct.pack(">I", 99))  # truncated queries
    check(c.replies(OPT_LIST_META)[-1][0] == REP_ERR_INVALID, "truncated meta query: ERR_INVALID")
    c.opt(OPT_LIST_META, struct.pack(">II", 0, 0))
    r = c.replies(OPT_LIST_META)
    check([t for t, _ in r] == [REP_META, REP_ACK] and r[0][1][4:] == b"base:allocation",
          "LIST_META_CONTEXT: base:allocation")
    # after all that, the handshake still completes and data is right
    c.structured = True
    c.go(structured=False, meta=True)
    check(c.read(MB, 4096) == IMAGE_HEAD[MB:MB + 4096], "read after refused options")
    c.request(CMD_DISC, 0, 0)
    check(c.closed_by_server(), "DISC: server closes")


def abort_and_unknown_export():
    c = Conn()
    c.hello()
    c.opt(OPT_ABORT)
    r = c.replies(OPT_ABORT)
    check(r[-1][0] == REP_ACK and c.closed_by_server(), "ABORT: ACK then close")
    c = Conn()
    c.hello()
    c.opt(OPT_EXPORT_NAME, b"nope")
    check(c.closed_by_server(), "EXPORT_NAME of an unknown export: disconnect")
    c = Conn()
    c.hello(flags=1)  # no NO_ZEROES: the old reply with 124 zero bytes
    c.opt(OPT_EXPORT_NAME, b"")
    size, fl = struct.unpack(">QH", c.rd(10))
    check(size == SIZE - SIZE % 512 and c.rd(124) == bytes(124), "EXPORT_NAME reply")
    check(c.read(0, 512) == IMAGE_HEAD[:512], "simple-reply read")
    # simple replies carry errors too; no payload follows them
    c.expect_error(c.request(CMD_READ, SIZE, 512), EINVAL, "simple: read past the end")
    c.expect_error(c.request(CMD_BS, 0, 512), EINVAL, "simple: block status without a context")
    c.expect_error(c.request(99, 0, 512), EINVAL, "simple: unknown command")
    check(c.read(512, 512) == IMAGE_HEAD[512:1024], "simple-reply read after errors")


def transmission():
    c = Conn()
    c.hello()
    c.go()
    c.expect_error(c.request(CMD_READ, 0, 64 * MB), EOVERFLOW, "64 MiB read")
    c.expect_error(c.request(CMD_READ, SIZE, 4096), EINVAL, "read at the end")
    c.expect_error(c.request(CMD_READ, (1 << 64) - 512, 1024), EINVAL, "read wrapping 2^64")
    c.expect_error(c.request(CMD_WRITE, SIZE - 4096, 8192, payload=b"w" * 8192), ENOSPC,
                   "write past the end")
    check(c.read(2 * MB, 8192) == IMAGE_HEAD[2 * MB:2 * MB + 8192], "read after a refused write")
    big = 40 * MB
    c.expect_error(c.request(CMD_WRITE, 0, big, payload=bytes(big)), EOVERFLOW, "40 MiB write")
    check(c.read(0, 4096) == IMAGE_HEAD[:4096], "the 40 MiB payload was dropped, not written")
    c.expect_error(c.request(99, 0, 4096), EINVAL, "unknown command")
    c.expect_error(c.request(CMD_READ, 0, 4096, flags=0x100), EINVAL, "unknown command flag")
    c.expect_error(c.request(CMD_READ, 0, 4096, flags=8), EINVAL, "REQ_ONE on a read")
    c.expect_error(c.request(CMD_READ, 100, 512), EINVAL, "unaligned read")
    c.expect_error(c.request(CMD_READ, 0, 0), EINVAL, "zero-length read")
    c.expect_error(c.request(CMD_FLUSH, 4096, 0), EINVAL, "flush with an offset")
    c.expect_error(c.request(CMD_BS, SIZE - 512, 1024), EINVAL, "block status past the end")
    c.expect_error(c.request(CMD_TRIM, SIZE, 4096), ENOSPC, "trim past the end")
    # pipelined, answered out of order or not: every cookie once, right data
    cks = {c.request(CMD_READ, i * 65536, 65536): i for i in range(40)}
    seen = set()
    for _ in range(40):
        ck, err, _, chunks = c.reply()
        check(ck in cks and ck not in seen and err == 0, "pipelined reply %d" % ck)
        seen.add(ck)
        i = cks[ck]
        data = bytearray(65536)
        for ty, p in chunks:
            if ty == 1:
                o = struct.unpack(">Q", p[:8])[0] - i * 65536
                data[o:o + len(p) - 8] = p[8:]
        check(bytes(data) == IMAGE_HEAD[i * 65536:(i + 1) * 65536], "pipelined data %d" % i)
    c.request(CMD_READ, 0, 4096, magic=0xDEADBEEF)
    check(c.closed_by_server(), "bad request magic: disconnect")


def hangups():
    # mid-handshake
    c = Conn()
    c.hello()
    c.send(struct.pack(">Q", IHAVEOPT)[:5])
    c.s.close()
    # mid-write: header and part of the payload, then gone; nothing lands
    c = Conn()
    c.hello()
    c.go()
    c.request(CMD_WRITE, 3 * MB, MB, payload=b"\xee" * 1000)
    c.s.close()
    # a big read asked for and never collected
    c = Conn()
    c.hello()
    c.go()
    c.request(CMD_READ, 0, 32 * MB)
    c.request(CMD_READ, 0, 32 * MB)
    c.s.close()
    check(good.read(3 * MB, MB) == IMAGE_HEAD[3 * MB:4 * MB], "a half-sent write wrote nothing")


def too_many():
    conns = []
    refused = 0
    for _ in range(24):
        c = Conn()
        try:
            c.rd(18)
            conns.append(c)
        except (EOFError, ConnectionResetError):
            refused += 1
    check(refused >= 24 - 15, "clients beyond the limit are turned away (%d refused)" % refused)
    for c in conns:
        c.s.close()


for name, fn in [("unknown client flags", bad_client_flags), ("bad option magic", bad_option_magic),
                 ("options", options), ("abort, unknown export, simple replies", abort_and_unknown_export),
                 ("transmission", transmission), ("hang-ups", hangups), ("too many clients", too_many)]:
    hostile(name, fn)
    # the good client is unharmed after each
    check(good.read(5 * MB, 65536) == IMAGE_HEAD[5 * MB:5 * MB + 65536], "good client after " + name)

# the good client writes where nobody else does, and reads it back
data = os.urandom(256 * 1024)
ck = good.request(CMD_WRITE, 40 * MB, len(data), payload=data)
cookie, err, _, _ = good.reply()
check(cookie == ck and err == 0, "good write")
ck = good.request(CMD_FLUSH, 0, 0)
cookie, err, _, _ = good.reply()
check(cookie == ck and err == 0, "good flush")
check(good.read(40 * MB, len(data)) == data, "good read-back")
with open(sys.argv[3], "wb") as f:
    f.write(data)
good.request(CMD_DISC, 0, 0)
check(good.closed_by_server(), "good DISC")
print("PASS: %d checks" % checks)
