"""Opening store files with HDF5 handles that fail fast, and disk-space checks.

HDF5 retries a read of checksummed metadata up to 100 times with growing sleeps when a
file is open in SWMR mode (it may be reading a block a live writer is rewriting). On a
corrupt file that is a hang of many minutes. A file that no live writer holds cannot
change under the reader, so ``open_h5`` asks for one attempt there
(``H5Pset_metadata_read_attempts``, which h5py does not wrap: called through ctypes on
the libhdf5 that h5py itself loaded). A reader of a file a live writer holds keeps a few
attempts: enough for a block caught mid-write, never minutes.
"""

import ctypes
import errno
import functools
import glob
import os

import h5py

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LIVE_WRITER_READ_ATTEMPTS = 8  # retries with delays doubling from 1 ns: well under 1 ms
# Bytes a writer reserves beyond a batch's data, for HDF5 metadata (chunk index, object
# headers) and for closing the file cleanly: ``reserve_space``.
METADATA_RESERVE_BYTES = 256 * 2**10


@functools.cache
def _hdf5_library():
    here = os.path.dirname(h5py.__file__)
    candidates = sorted(
        glob.glob(os.path.join(here, os.pardir, "h5py.libs", "libhdf5-*.so*"))
        + glob.glob(os.path.join(here, ".dylibs", "libhdf5*.dylib"))
    )
    lib = ctypes.CDLL(candidates[0] if candidates else "libhdf5.so")
    lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
    lib.H5Pset_metadata_read_attempts.restype = ctypes.c_int
    return lib


def _set_read_attempts(fapl, attempts):
    if _hdf5_library().H5Pset_metadata_read_attempts(fapl.id, attempts) < 0:
        raise RuntimeError("H5Pset_metadata_read_attempts failed")


def open_h5(path, mode, *, swmr=False, read_attempts=1):
    """An h5py.File ("r" or "r+", libver latest, HDF5 file locking off: nnft_fast's own
    ``writer_lock`` guards writers) whose metadata reads are tried ``read_attempts``
    times. ``swmr`` opens in SWMR-read ("r") or SWMR-write ("r+") mode; the attempts
    hold in both (a handle switched to SWMR later, ``File.swmr_mode = True``, would
    fall back to HDF5's 100)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, True)
    _set_read_attempts(fapl, read_attempts)
    flags = h5py.h5f.ACC_RDWR if mode == "r+" else h5py.h5f.ACC_RDONLY
    if swmr:
        flags |= h5py.h5f.ACC_SWMR_WRITE if mode == "r+" else h5py.h5f.ACC_SWMR_READ
    fid = h5py.h5f.open(os.fsencode(path), flags, fapl=fapl)
    return h5py.File(fid)


def has_hdf5_signature(path):
    """True if the file starts with the HDF5 signature (superblock at offset 0)."""
    with open(path, "rb") as fh:
        return fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


_FALLOC_KEEP_SIZE = 0x01
_FALLOC_PUNCH_HOLE = 0x02


@functools.cache
def _fallocate():
    """libc's fallocate(fd, mode, offset, len), or None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fallocate = libc.fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    return fallocate


def _no_space(path, free, needed, committed):
    kept = "its" if committed is None else f"its {committed}"
    return OSError(
        errno.ENOSPC,
        f"not enough free disk space for {path}: {free} the next "
        f"batch needs about {needed:,} bytes; the file is unchanged and keeps "
        f"{kept} committed networks: free some space and resume it "
        "(nf.resume / nnft resume)",
    )


def reserve_space(fd, path, needed_bytes, committed=None):
    """Make sure the next ``needed_bytes`` (+ METADATA_RESERVE_BYTES for HDF5's metadata)
    can be written to the store open as ``fd``, or raise OSError(ENOSPC) naming the
    committed count before anything is written: HDF5 cannot always close a file cleanly
    after a failed write. Where the file system supports it the bytes are reserved for
    the file beyond its end (``fallocate`` with KEEP_SIZE), so another process filling
    the disk cannot take them; elsewhere the free space is checked (``statvfs``).
    ``release_space`` gives back what was not used."""
    needed = needed_bytes + METADATA_RESERVE_BYTES
    fallocate = _fallocate()
    if fallocate is not None:
        if fallocate(fd, _FALLOC_KEEP_SIZE, os.fstat(fd).st_size, needed) == 0:
            return
        code = ctypes.get_errno()
        if code in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(path, "the disk is full;", needed, committed)
    stat = os.statvfs(os.path.dirname(os.path.abspath(path)))
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        raise _no_space(path, f"{free:,} bytes free,", needed, committed)


def release_space(fd):
    """Give back the disk blocks ``reserve_space`` kept beyond the end of the file."""
    fallocate = _fallocate()
    if fallocate is not None:
        fallocate(fd, _FALLOC_PUNCH_HOLE | _FALLOC_KEEP_SIZE, os.fstat(fd).st_size, 1 << 40)
