"""A full disk never costs committed networks (nnft_fast/store.py, h5files.py): the writer
stops with an OSError naming the committed count, the file stays readable, a resume while
the disk is still full changes nothing, and after freeing space the resume is
bit-identical. On a real small tmpfs (mounted by the test where it may: CI runs as root)
and with ENOSPC simulated at several points of the commit."""

import errno
import hashlib
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import h5files
from nnft_fast import store as nf_store

NET = nf.Network((4, 16, 16), "relu", cw=2.0)
X = np.array([[1.0, -0.5, 0.3, 2.0], [0.2, 0.7, -1.1, 0.4]])
SEED = 3
N = 8000
SAVE = {1: 16, 2: 16}  # 512 bytes of raw outputs per network: 4 MB in all
BATCH = 100


@pytest.fixture(scope="module")
def reference():
    return (nf.sample(NET, X, N, SEED), nf.preactivations(NET, X, N, SEED))


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _committed_in(message):
    found = re.search(r"(\d+) committed networks", message)
    assert found, message
    return int(found.group(1))


def _check_complete(path, reference):
    mem, pre = reference
    ens = nf.open(path)
    assert ens.n_networks == N
    for name in ("block_sums", "block_counts"):
        assert np.array_equal(getattr(ens.accumulator, name), getattr(mem.accumulator, name))
    for layer, count in SAVE.items():
        np.testing.assert_array_equal(nf.read_raw(path, layer), pre[layer - 1][:, :count, :])


def _mount(mnt, size):
    mnt.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB tmpfs, grown later with ``grow``; skipped where mounting is refused."""
    mnt = tmp_path / "mnt"
    if os.geteuid() != 0 or not _mount(mnt, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _grow(mnt, size="32m"):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def test_real_full_disk_api(small_disk, reference):
    p = small_disk / "run.h5"
    with pytest.raises(OSError) as info:
        nf.sample(NET, X, N, SEED, store=p, save=SAVE, batch_size=BATCH)
    assert info.value.errno == errno.ENOSPC
    committed = _committed_in(str(info.value))
    assert 0 < committed < N and committed % BATCH == 0
    assert nf.open(p).n_networks == committed  # readable, every committed network
    before = _digest(p)
    with pytest.raises(OSError) as again:  # still full: fails cleanly ...
        nf.resume(p, batch_size=BATCH)
    assert again.value.errno == errno.ENOSPC and _committed_in(str(again.value)) == committed
    assert _digest(p) == before  # ... and changes nothing
    _grow(small_disk)
    nf.resume(p)  # same process, after freeing space
    _check_complete(p, reference)
    with h5py.File(p, "r") as f:  # closed cleanly
        assert int(f.attrs["committed"]) == N


def test_real_full_disk_cli(small_disk, reference, tmp_path):
    cfg = tmp_path / "run.toml"
    p = small_disk / "cli.h5"
    widths = ", ".join(map(str, NET.widths))
    cfg.write_text(f"""
[network]
widths = [{widths}]
activation = "relu"
cw = 2.0

[inputs]
n = 2
seed = 1

[run]
n_networks = {N}
seed = {SEED}

[store]
out = "{p}"
save = {{1 = 16, 2 = 16}}
""")
    nnft = [sys.executable, "-m", "nnft_fast.cli"]
    done = subprocess.run(
        nnft + ["run", str(cfg), "--batch-size", str(BATCH), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "committed networks" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    committed = _committed_in(lines[0])
    assert nf.open(p).n_networks == committed
    _grow(small_disk)
    done = subprocess.run(nnft + ["resume", str(p), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert nf.open(p).n_networks == N


# ------------------------------------------------------------ simulated ENOSPC, each point


def _enospc():
    return OSError(errno.ENOSPC, "No space left on device")


def _fail_reservation(monkeypatch, calls):
    real = h5files.reserve_space

    def reserve(fd, path, needed, committed=None):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise h5files._no_space(path, "the disk is full;", needed, committed)
        return real(fd, path, needed, committed)

    monkeypatch.setattr(nf_store, "reserve_space", reserve)


def _fail_method(monkeypatch, calls, owner, name, only=None):
    real = getattr(owner, name)

    def failing(self, *args, **kwargs):
        if only is None or only(self):
            calls["n"] += 1
            if calls["n"] == calls["fail_at"]:
                raise _enospc()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


def _fail_write_slot(monkeypatch, calls):
    real = nf_store.write_slot

    def failing(group, acc, committed):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise _enospc()
        return real(group, acc, committed)

    monkeypatch.setattr(nf_store, "write_slot", failing)


POINTS = {
    "reservation": _fail_reservation,
    "raw_resize": lambda mp, c: _fail_method(
        mp, c, h5py.Dataset, "resize", lambda d: d.name.startswith("/raw/")
    ),
    "raw_write": lambda mp, c: _fail_method(
        mp, c, h5py.Dataset, "__setitem__", lambda d: d.name.startswith("/raw/")
    ),
    "slot": _fail_write_slot,
    "flush": lambda mp, c: _fail_method(mp, c, h5py.File, "flush"),
}


@pytest.mark.parametrize("point", sorted(POINTS))
def test_simulated_enospc_keeps_committed_networks(tmp_path, monkeypatch, reference, point):
    p = tmp_path / "sim.h5"
    calls = {"n": 0, "fail_at": 9}
    POINTS[point](monkeypatch, calls)
    with pytest.raises(OSError) as info:
        nf.sample(NET, X, N, SEED, store=p, save=SAVE, batch_size=BATCH)
    assert info.value.errno == errno.ENOSPC
    committed = _committed_in(str(info.value))
    assert 0 < committed < N
    monkeypatch.undo()
    assert nf.open(p).n_networks == committed
    nf.resume(p)
    _check_complete(p, reference)


def test_no_empty_file_left_where_a_run_cannot_start(tmp_path, monkeypatch):
    p = tmp_path / "never.h5"
    _fail_reservation(monkeypatch, {"n": 0, "fail_at": 1})
    with pytest.raises(OSError):
        nf.sample(NET, X, 100, SEED, store=p)
    assert not p.exists()
