"""HDF5 store: round trips, crash-safe resume under SIGKILL, refusals, SWMR readers,
out-of-core re-analysis (nnft_fast/store.py)."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import nnft_fast as nf
from tests import _kill_target as kt

KILL_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kill_target.py")

NET = kt.NETWORK
X = kt.X
ORTHO = nf.Network((4, 8, 8, 8), "tanh", "orthogonal", cw=1.5, cb=0.1)


def assert_same_accumulator(a, b):
    assert a.n_networks == b.n_networks
    assert np.array_equal(a.accumulator.block_sums, b.accumulator.block_sums)
    assert np.array_equal(a.accumulator.block_counts, b.accumulator.block_counts)


def raw_of(path, name):
    with h5py.File(path, "r", libver="latest", swmr=True, locking=False) as f:
        return f[name][...]


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("network", [NET, ORTHO], ids=["gaussian-relu", "orthogonal-tanh"])
@pytest.mark.parametrize("batch_size", [None, 7, 250])
def test_round_trip_default_save(tmp_path, network, batch_size):
    n, seed = 600, 11
    p = tmp_path / "run.h5"
    ens = nf.sample(network, X, n, seed, store=p, batch_size=batch_size)
    mem = nf.sample(network, X, n, seed, batch_size=None if batch_size is None else 64)
    assert_same_accumulator(ens, mem)
    opened = nf.open(p)
    assert_same_accumulator(opened, mem)
    assert opened.target_networks == n
    for layer in (1, 3):
        np.testing.assert_array_equal(opened.two_point(layer).value, mem.two_point(layer).value)
        np.testing.assert_array_equal(opened.four_point(layer).error, mem.four_point(layer).error)
    pre = nf.preactivations(network, X, n, seed)
    # default save: first min(4, n_L) neurons of the last layer only
    with h5py.File(p, "r") as f:
        assert sorted(f["raw"]) == ["layer_3"]
    np.testing.assert_array_equal(raw_of(p, "raw/layer_3"), pre[2][:, :4, :])
    np.testing.assert_array_equal(nf.read_raw(p, 3), pre[2][:, :4, :])
    np.testing.assert_array_equal(nf.read_raw(p, 3, 100, 250), pre[2][100:250, :4, :])
    with pytest.raises(ValueError):
        nf.read_raw(p, 1)


def test_round_trip_default_save_narrow_last_layer(tmp_path):
    net = nf.Network((4, 8, 3), "relu", "gaussian", cw=2.0)
    p = tmp_path / "narrow.h5"
    nf.sample(net, X, 50, 2, store=p)
    np.testing.assert_array_equal(nf.read_raw(p, 2), nf.preactivations(net, X, 50, 2)[1])


def test_round_trip_explicit_save_and_first_network(tmp_path):
    n, seed, first = 500, 5, 123
    p = tmp_path / "explicit.h5"
    ens = nf.sample(NET, X, n, seed, store=p, save={1: 8, 3: 2}, batch_size=33, first_network=first)
    mem = nf.sample(NET, X, n, seed, first_network=first)
    assert_same_accumulator(ens, mem)
    assert_same_accumulator(nf.open(p), mem)
    assert nf.open(p).first_network == first
    pre = nf.preactivations(NET, X, n, seed, first_network=first)
    with h5py.File(p, "r") as f:
        assert sorted(f["raw"]) == ["layer_1", "layer_3"]
        assert f["raw/layer_1"].shape == (n, 8, 2)
        assert f["raw/layer_3"].shape == (n, 2, 2)
        np.testing.assert_array_equal(f["inputs"][...], X)
    np.testing.assert_array_equal(nf.read_raw(p, 1), pre[0])
    np.testing.assert_array_equal(nf.read_raw(p, 3), pre[2][:, :2, :])


def test_no_save_stores_no_raw(tmp_path):
    p = tmp_path / "noraw.h5"
    ens = nf.sample(NET, X, 200, 1, store=p, save=None, batch_size=50)
    assert_same_accumulator(ens, nf.sample(NET, X, 200, 1))
    with h5py.File(p, "r") as f:
        assert len(f.get("raw", {})) == 0
    with pytest.raises(ValueError):
        nf.reanalyze(p)


@pytest.mark.parametrize("compression", ["lzf", "gzip", None])
def test_file_layout_plain_h5py(tmp_path, compression):
    n, seed = 300, 9
    p = tmp_path / f"layout_{compression}.h5"
    nf.sample(NET, X, n, seed, store=p, save={1: 8, 3: 2}, compression=compression, batch_size=100)
    with h5py.File(p, "r") as f:
        # text attributes are fixed-length byte strings (kept in checksummed headers)
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in f.attrs.items()}
        for key in (
            "schema_version",
            "package_version",
            "config",
            "checksums",
            "created",
            "host",
            "backend",
            "committed",
        ):
            assert key in attrs, key
        assert int(attrs["schema_version"]) == nf.store.SCHEMA_VERSION == 2
        assert attrs["package_version"] == nf.__version__
        assert int(attrs["committed"]) == n
        config = json.loads(attrs["config"])
        assert config["seed"] == seed
        assert config["n_networks"] == n
        assert config["network"]["widths"] == [4, 8, 8, 8]
        assert config["network"]["activation"] == "relu"
        assert config["network"]["init"] == "gaussian"
        assert config["save"] == [[1, 8], [3, 2]]
        assert attrs["backend"] == "cpu"
        assert isinstance(attrs["host"], str) and attrs["host"]
        assert "T" in attrs["created"]
        for name in ("raw/layer_1", "raw/layer_3"):
            d = f[name]
            assert d.chunks is not None
            assert d.maxshape[0] is None
            assert d.fletcher32
            assert d.compression == compression
            assert d.dtype == np.float64
        slots = [int(f[f"accumulator/slot_{i}"].attrs["committed"]) for i in (0, 1)]
        assert n in slots
    info = nf.store_info(p)
    assert info["committed"] == n and info["config"] == config
    assert info["raw"] == {"layer_1": (n, 8, 2), "layer_3": (n, 2, 2)}


def test_float32_stores_float32(tmp_path):
    n, seed = 300, 4
    p = tmp_path / "f32.h5"
    ens = nf.sample(NET, X, n, seed, store=p, dtype=np.float32, batch_size=64)
    mem = nf.sample(NET, X, n, seed, dtype=np.float32)
    assert_same_accumulator(ens, mem)
    assert nf.open(p).dtype == np.float32
    with h5py.File(p, "r") as f:
        assert f["raw/layer_3"].dtype == np.float32
        assert json.loads(f.attrs["config"])["dtype"] == "float32"
    raw = nf.read_raw(p, 3)
    assert raw.dtype == np.float32
    pre = nf.preactivations(NET, X, n, seed, dtype=np.float32)
    np.testing.assert_array_equal(raw, pre[2][:, :4, :])


def test_progress_reports_every_batch(tmp_path):
    calls = []
    nf.sample(
        NET,
        X,
        105,
        0,
        store=tmp_path / "p.h5",
        batch_size=25,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(25, 105), (50, 105), (75, 105), (100, 105), (105, 105)]


# ------------------------------------------------------------ crash-safe resume (SIGKILL)


def start_writer(path, *args):
    return subprocess.Popen(
        [sys.executable, KILL_SCRIPT, str(path), *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def peek_committed(path):
    """committed as a SWMR reader sees it; None while the file is being created."""
    try:
        with h5py.File(path, "r", libver="latest", swmr=True, locking=False) as f:
            return int(f.attrs["committed"])
    except (OSError, KeyError):
        return None


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def kill_when(path, threshold, extra_sleep=0.0, args=(kt.N_NETWORKS, kt.BATCH_SIZE, 0.004)):
    """Start the writer, SIGKILL it once committed >= threshold (after extra_sleep). No
    deadline: a slow machine only makes the wait longer (the writer always ends)."""
    proc = start_writer(path, *args)  # ~200 batches, paused: the kill lands mid-run
    try:
        while True:
            committed = peek_committed(path)
            if committed is not None and committed >= threshold:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.002)
        if extra_sleep:
            time.sleep(extra_sleep)
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        stop(proc)
    if proc.returncode not in (-signal.SIGKILL, 0):
        pytest.fail(f"writer failed (rc {proc.returncode}): {proc.stderr.read().decode()}")
    return proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def kill_reference():
    """Uninterrupted in-memory run and preactivations of the kill target's config."""
    mem = nf.sample(NET, X, kt.N_NETWORKS, kt.SEED)
    pre = nf.preactivations(NET, X, kt.N_NETWORKS, kt.SEED)
    return mem, pre


def check_killed_file(path):
    """Invariants of a file left by SIGKILL; returns its committed count."""
    with h5py.File(path, "r", libver="latest", swmr=True, locking=False) as f:
        committed = int(f.attrs["committed"])
        lengths = {name: f["raw"][name].shape[0] for name in f["raw"]}
    assert 0 <= committed <= kt.N_NETWORKS
    for name, length in lengths.items():
        assert length >= committed, (name, length, committed)
    ens = nf.open(path)  # must open a crashed file
    assert ens.n_networks == committed
    assert ens.target_networks == kt.N_NETWORKS
    info = nf.store_info(path)
    assert info["committed"] == committed
    for layer, count in kt.SAVE.items():
        raw = nf.read_raw(path, layer)
        assert raw.shape == (committed, count, X.shape[0])
    return committed


def check_resumed(path, kill_reference):
    mem, pre = kill_reference
    ens = nf.resume(path)
    assert_same_accumulator(ens, mem)
    assert_same_accumulator(nf.open(path), mem)
    for layer, count in kt.SAVE.items():
        np.testing.assert_array_equal(nf.read_raw(path, layer), pre[layer - 1][:, :count, :])
    with h5py.File(path, "r") as f:  # closed cleanly after resume: plain open works
        assert int(f.attrs["committed"]) == kt.N_NETWORKS
        for layer in kt.SAVE:
            assert f[f"raw/layer_{layer}"].shape[0] == kt.N_NETWORKS


def test_sigkill_then_resume_is_bit_identical(tmp_path, kill_reference):
    """Three real SIGKILLs of a streaming writer at different moments, each resumed."""
    total = kt.N_NETWORKS
    moments = [(1, 0.0), (total // 3, 0.0031), (2 * total // 3, 0.0117)]
    seen = []
    for i, (threshold, extra) in enumerate(moments):
        p = tmp_path / f"killed_{i}.h5"
        kill_when(p, threshold, extra)
        committed = check_killed_file(p)
        seen.append(committed)
        check_resumed(p, kill_reference)
    assert any(0 < c < total for c in seen), f"no kill landed mid-run: {seen}"


def test_sigkill_twice_same_file(tmp_path, kill_reference):
    """A killed file whose resume is itself interrupted stays consistent and resumes."""
    p = tmp_path / "twice.h5"
    kill_when(p, 500)
    first = check_killed_file(p)

    # a resume that is itself interrupted (progress raises) keeps the file consistent
    class Stop(Exception):
        pass

    def interrupt(done, total):
        if done >= first + 300:
            raise Stop

    with pytest.raises(Stop):
        nf.resume(p, batch_size=40, progress=interrupt)
    second = check_killed_file(p)
    assert first < second < kt.N_NETWORKS
    check_resumed(p, kill_reference)


# ------------------------------------------------------------------------------ refusals


@pytest.fixture
def complete_store(tmp_path):
    p = tmp_path / "complete.h5"
    nf.sample(NET, X, 300, 21, store=p, save={1: 8, 3: 2}, batch_size=50)
    return p


def test_resume_refuses_other_config(complete_store):
    config = nf.store_info(complete_store)["config"]
    assert nf.resume(complete_store, expect=dict(config)).n_networks == 300  # matches
    changed = dict(config, seed=config["seed"] + 1)
    with pytest.raises(nf.StoreError, match="seed"):
        nf.resume(complete_store, expect=changed)
    changed = dict(config, network=dict(config["network"], cw=[1.0, 1.0, 1.0]))
    with pytest.raises(nf.StoreError, match="network"):
        nf.resume(complete_store, expect=changed)
    assert nf.open(complete_store).n_networks == 300  # the refusal left the file intact


def _locking_disabled():
    return os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() in ("FALSE", "0", "NO")


def test_second_writer_refused(complete_store):
    if _locking_disabled():
        pytest.skip("HDF5_USE_FILE_LOCKING disables HDF5 file locking here")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, h5py\n"
            "f = h5py.File(sys.argv[1], 'r+')\n"
            "print('ready', flush=True)\n"
            "sys.stdin.read()\n",
            str(complete_store),
        ],  # holds the file until stopped
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = holder.stdout.readline()
        assert line.strip() == "ready", holder.stderr.read()
        try:  # does this file system honour HDF5's locks at all?
            with h5py.File(complete_store, "r"):
                pytest.skip("HDF5 file locking is not effective on this file system")
        except OSError:
            pass
        with pytest.raises(nf.StoreError, match="another process|writer"):
            nf.resume(complete_store)
    finally:
        stop(holder)
    # once the other writer is gone the file is usable again
    assert nf.resume(complete_store).n_networks == 300


def test_existing_output_needs_overwrite(complete_store):
    before = complete_store.read_bytes()
    with pytest.raises(FileExistsError):
        nf.sample(NET, X, 100, 1, store=complete_store)
    assert complete_store.read_bytes() == before
    ens = nf.sample(NET, X, 100, 1, store=complete_store, overwrite=True)
    assert ens.n_networks == 100 and nf.open(complete_store).n_networks == 100
    assert nf.store_info(complete_store)["config"]["seed"] == 1


def test_missing_directory_refused(tmp_path):
    with pytest.raises(PermissionError):
        nf.sample(NET, X, 100, 1, store=tmp_path / "no" / "such" / "dir" / "run.h5")
    assert not (tmp_path / "no").exists()


def test_bad_arguments(tmp_path, complete_store):
    with pytest.raises(ValueError):
        nf.sample(NET, X, 100, 1, store=tmp_path / "c.h5", compression="zstd")
    with pytest.raises(ValueError):
        nf.reanalyze(complete_store, chunk_networks=0)
    with pytest.raises(ValueError):
        nf.sample(NET, X, 100, 1, store=tmp_path / "s.h5", save={4: 1})
    with pytest.raises(ValueError):
        nf.sample(NET, X, 100, 1, store=tmp_path / "s.h5", save={1: 9})


READERS = {
    "open": lambda p: nf.open(p),
    "resume": lambda p: nf.resume(p),
    "reanalyze": lambda p: nf.reanalyze(p),
    "store_info": lambda p: nf.store_info(p),
    "read_raw": lambda p: nf.read_raw(p, 3),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_missing_path(tmp_path, reader):
    with pytest.raises(FileNotFoundError):
        READERS[reader](tmp_path / "absent.h5")


def _corrupt_files(tmp_path, complete_store):
    rng = np.random.default_rng(0)
    files = {}
    files["random"] = tmp_path / "random.h5"
    files["random"].write_bytes(rng.bytes(50_000))
    files["empty"] = tmp_path / "empty.h5"
    files["empty"].write_bytes(b"")
    data = complete_store.read_bytes()
    for frac in (0.02, 0.5, 0.97):
        name = f"truncated_{frac}"
        files[name] = tmp_path / f"{name}.h5"
        files[name].write_bytes(data[: int(len(data) * frac)])
    files["not_a_store"] = tmp_path / "plain.h5"
    with h5py.File(files["not_a_store"], "w") as f:
        f["x"] = np.arange(3)
    return files


@pytest.mark.parametrize("reader", sorted(READERS))
def test_corrupt_files_raise_store_error(tmp_path, complete_store, reader):
    for name, p in _corrupt_files(tmp_path, complete_store).items():
        try:
            READERS[reader](p)
        except nf.StoreError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point is the exception type
            pytest.fail(f"{reader}({name}) raised {type(exc).__name__}: {exc}")
        pytest.fail(f"{reader}({name}) accepted a corrupt file")


def test_tampered_committed_is_refused(tmp_path, complete_store):
    """A file claiming more committed networks than it holds is never accepted."""
    over = tmp_path / "over.h5"
    shutil.copy(complete_store, over)
    with h5py.File(over, "r+") as f:
        f.attrs["committed"] = np.int64(299 + 2)  # beyond the raw rows and checkpoints
    shrunk = tmp_path / "shrunk.h5"
    shutil.copy(complete_store, shrunk)
    with h5py.File(shrunk, "r+") as f:
        f["raw/layer_3"].resize(250, axis=0)  # raw rows lost, header unchanged
    no_slot = tmp_path / "no_slot.h5"
    shutil.copy(complete_store, no_slot)
    with h5py.File(no_slot, "r+") as f:
        f.attrs["committed"] = np.int64(150)  # no checkpoint holds exactly 150
    for p in (over, shrunk):
        for reader in ("open", "resume", "reanalyze", "read_raw"):
            with pytest.raises(nf.StoreError, match="corrupt"):
                READERS[reader](p)
    for reader in ("open", "resume"):  # the accumulator checkpoints disagree
        with pytest.raises(nf.StoreError, match="corrupt"):
            READERS[reader](no_slot)


def test_full_disk_keeps_committed_networks(tmp_path, monkeypatch, kill_reference):
    """ENOSPC in the middle of a run: a clear OSError, a consistent file, then resume."""
    p = tmp_path / "full.h5"
    real_setitem = h5py.Dataset.__setitem__
    writes = {"n": 0}

    def failing_setitem(self, key, value):
        if self.name.startswith("/raw/"):
            writes["n"] += 1
            if writes["n"] > 2 * 7:  # two raw layers: fail in the 8th batch
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing_setitem)
    with pytest.raises(OSError) as info:
        nf.sample(NET, X, kt.N_NETWORKS, kt.SEED, store=p, save=kt.SAVE, batch_size=100)
    assert info.value.errno == errno.ENOSPC
    assert "700 committed networks" in str(info.value) and "resume" in str(info.value)
    monkeypatch.setattr(h5py.Dataset, "__setitem__", real_setitem)
    assert nf.open(p).n_networks == 700
    assert check_killed_file(p) == 700
    check_resumed(p, kill_reference)


# ----------------------------------------------------------------------- SWMR live reader


def test_reader_watches_running_writer(tmp_path):
    """nf.open on a file another process is writing sees consistent, growing prefixes.
    The writer waits for the test after every batch: no timing assumptions."""
    p = tmp_path / "live.h5"
    proc = subprocess.Popen(
        [sys.executable, KILL_SCRIPT, str(p), str(kt.N_NETWORKS), str(kt.BATCH_SIZE), "0", "step"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        for step in range(3):
            while (peek_committed(p) or 0) < (step + 1) * kt.BATCH_SIZE:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.01)
            ens = nf.open(p)
            assert ens.target_networks == kt.N_NETWORKS
            assert ens.n_networks == (step + 1) * kt.BATCH_SIZE
            seen.append(ens)
            with pytest.raises(nf.StoreError, match="another process"):
                nf.resume(p)  # a second writer is refused while the first runs
            proc.stdin.write("next\n")
            proc.stdin.flush()
    finally:
        stop(proc)
    counts = [e.n_networks for e in seen]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    for ens in (seen[0], seen[-1]):  # each snapshot is exactly a prefix of the run
        assert_same_accumulator(ens, nf.sample(NET, X, ens.n_networks, kt.SEED))


# ---------------------------------------------------------------------------- reanalyze


def test_reanalyze_matches_online_and_reference(tmp_path):
    """Layer 1 saved in full: equals the online estimates; layer 3 saved in part: equals
    the NumPy reference estimator on the stored neurons; chunking changes nothing."""
    from tests import reference

    n, seed, first = 700, 8, 40
    p = tmp_path / "re.h5"
    online = nf.sample(
        NET, X, n, seed, store=p, save={1: 8, 3: 2}, batch_size=128, first_network=first
    )
    re_default = nf.reanalyze(p)
    re_chunked = nf.reanalyze(p, chunk_networks=37)
    assert re_default.n_networks == n
    for layer in (1, 3):
        for name in ("two_point", "vertex"):
            a, b = getattr(re_default, name)(layer), getattr(re_chunked, name)(layer)
            np.testing.assert_array_equal(a.value, b.value)
            np.testing.assert_array_equal(a.error, b.error)
    for kind in ("two_point", "vertex"):
        a, b = getattr(online, kind)(1), getattr(re_default, kind)(1)
        np.testing.assert_allclose(b.value, a.value, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(b.error, a.error, rtol=1e-9, atol=1e-13)
    ref = reference.moment_estimates(nf.read_raw(p, 3), fan_in=8, first=first)
    np.testing.assert_allclose(re_default.two_point(3).value, ref["two_point"][0], rtol=1e-11)
    np.testing.assert_allclose(re_default.two_point(3).error, ref["two_point"][1], rtol=1e-9)
    for neurons, name in (("distinct", "distinct_connected"), ("same", "same_connected")):
        est = re_default.four_point(3, neurons=neurons)
        np.testing.assert_allclose(est.value, ref[name][0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.error, ref[name][1], rtol=1e-7, atol=1e-12)
    # the subset estimates the same K as all 8 neurons: agree within the errors
    diff = re_default.two_point(3).value - online.two_point(3).value
    assert np.all(np.abs(diff) < 5 * re_default.two_point(3).error)
    with pytest.raises(ValueError):
        re_default.two_point(2)  # layer 2 was not saved


# ---------------------------------------------------------------------- writer lock


def test_lookup3_matches_published_vectors_and_hdf5(tmp_path):
    from nnft_fast.writer_lock import lookup3, read_superblock

    # test vectors printed by the driver in Bob Jenkins' lookup3.c
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161
    p = tmp_path / "sb.h5"
    with h5py.File(p, "w", libver="latest") as f:  # HDF5 writes a checksummed v3 superblock
        f["x"] = np.arange(3)
    fd = os.open(p, os.O_RDONLY)
    try:
        flags, eof = read_superblock(fd)  # None if our checksum disagreed with HDF5's
    finally:
        os.close(fd)
    assert flags == 0 and eof == os.path.getsize(p)
