"""One writer per store file, and recovery after a writer was killed.

A store writer holds an exclusive ``flock`` on the HDF5 file itself for its whole run
(HDF5's own locking is switched off for nnft_fast's handles, so readers that open with
``locking=False`` -- as ``nf.open`` does -- can watch the file in SWMR mode). The OS drops
the lock when the writer dies, however it dies.

A killed SWMR writer also leaves the superblock's *file consistency flags* set (bit 0:
open for write, bit 2: open for SWMR write), and HDF5 then refuses to open the file for
writing ("may use h5clear"). Holding the lock proves no writer is alive, so the flags
are stale and are cleared here -- the ``h5clear -s`` operation: rewrite the flags byte of
the version 2/3 superblock and its Jenkins lookup3 checksum, after checking that the
stored checksum is the one this code computes.
"""

import fcntl
import os

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF


def _rot(x, k):
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data, initval=0):
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data`` (HDF5's metadata checksum)."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    pos = 0
    while length > 12:
        a = (a + int.from_bytes(data[pos : pos + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[pos + 4 : pos + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[pos + 8 : pos + 12], "little")) & _MASK
        # one mixing round a line, as in lookup3.c
        # fmt: off
        a = (a - c) & _MASK; a ^= _rot(c, 4); c = (c + b) & _MASK        # noqa: E702
        b = (b - a) & _MASK; b ^= _rot(a, 6); a = (a + c) & _MASK        # noqa: E702
        c = (c - b) & _MASK; c ^= _rot(b, 8); b = (b + a) & _MASK        # noqa: E702
        a = (a - c) & _MASK; a ^= _rot(c, 16); c = (c + b) & _MASK       # noqa: E702
        b = (b - a) & _MASK; b ^= _rot(a, 19); a = (a + c) & _MASK       # noqa: E702
        c = (c - b) & _MASK; c ^= _rot(b, 4); b = (b + a) & _MASK        # noqa: E702
        # fmt: on
        length -= 12
        pos += 12
    if length == 0:
        return c
    tail = data[pos : pos + length] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    # fmt: off
    c ^= b; c = (c - _rot(b, 14)) & _MASK                                # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _MASK                                # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _MASK                                # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _MASK                                # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _MASK                                 # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _MASK                                # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _MASK                                # noqa: E702
    # fmt: on
    return c


SWMR_WRITE_FLAG = 0x04


def read_superblock(fd):
    """(consistency flags, end-of-file address) of a v2/v3 superblock whose checksum
    verifies, or None (other versions, or not HDF5 at all)."""
    head = os.pread(fd, 64, 0)
    if len(head) < 12 or head[:8] != HDF5_SIGNATURE or head[8] not in (2, 3):
        return None
    width = head[9]
    size = 12 + 4 * width  # signature..flags, then 4 addresses of ``width`` bytes
    if len(head) < size + 4 or lookup3(head[:size]) != int.from_bytes(
        head[size : size + 4], "little"
    ):
        return None
    eof = int.from_bytes(head[12 + 2 * width : 12 + 3 * width], "little")
    return head[11], eof


def writer_alive(fd):
    """True if another open file description holds an exclusive lock on the file."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def clear_stale_write_flags(fd):
    """Clear a v2/v3 superblock's consistency flags; True if they were set.

    Only call while holding the writer lock. Files that are not HDF5 with a v2/v3
    superblock at offset 0 are left untouched (HDF5 reports them when opened).
    """
    state = read_superblock(fd)
    if state is None or state[0] == 0:
        return False
    size = 12 + 4 * os.pread(fd, 10, 0)[9]
    block = bytearray(os.pread(fd, size, 0))
    block[11] = 0
    os.pwrite(fd, bytes(block) + lookup3(bytes(block)).to_bytes(4, "little"), 0)
    os.fsync(fd)
    return True


class WriterLock:
    """Exclusive OS lock on a store file, held from before HDF5 opens it to after it closes.

    Raises BlockingIOError when another process holds the file (an nnft_fast writer, or
    any HDF5 program that opened it with file locking on).
    """

    def __init__(self, path, create=False):
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.path = path
        self.fd = os.open(path, flags, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise BlockingIOError(f"{path} is held by another process") from None

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
