"""A bare NBD client for the shell tests: the oldest fixed-newstyle
handshake (NBD_OPT_EXPORT_NAME "") and single requests with simple replies,
so a test can send exactly what a real client library would not."""
import select
import socket
import struct

SIMPLE_REPLY = 0x67446698
CMD_READ, CMD_WRITE, CMD_CACHE, CMD_WRITE_ZEROES = 0, 1, 5, 6
FLAG_NO_HOLE, FLAG_FAST_ZERO = 1 << 1, 1 << 4
TX_SEND_WRITE_ZEROES, TX_SEND_CACHE, TX_SEND_FAST_ZERO = 1 << 6, 1 << 10, 1 << 11


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.rd(18)                                   # NBDMAGIC IHAVEOPT flags
        self.s.sendall(struct.pack(">I", 3))         # FIXED_NEWSTYLE | NO_ZEROES
        self.s.sendall(struct.pack(">QII", 0x49484156454F5054, 1, 0))  # EXPORT_NAME ""
        self.size, self.flags = struct.unpack(">QH", self.rd(10))

    def rd(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise SystemExit("server hung up")
            b += c
        return b

    def send(self, cmd, cookie, off, length, flags=0, payload=b""):
        self.s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, cmd, cookie, off, length) + payload)

    def replied_within(self, seconds):
        return bool(select.select([self.s], [], [], seconds)[0])

    def reply(self):
        """(magic, error, cookie) of the next simple reply."""
        return struct.unpack(">IIQ", self.rd(16))
