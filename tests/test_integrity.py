"""Store integrity (nnft_fast/store.py, integrity.py, h5files.py): corruption is a
StoreError naming the part, never different numbers; readers fail fast; read_raw bounds;
file size; sharded overwrite takes the writer lock."""

import concurrent.futures as cf
import ctypes
import hashlib
import json
import os
import shutil

import h5py
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import h5files
from nnft_fast.writer_lock import WriterLock

NET = nf.Network((3, 8, 8), "relu", cw=2.0)
X = np.array([[1.0, -0.5, 0.3], [0.2, 0.7, -1.1]])
SEED = 5
N = 300
BATCH = 50
SAVE = {1: 4, 2: 8}
NTK_OBS = ("two_point", "four_point", "ntk")


class _Stop(Exception):
    pass


def _stop_at(count):
    def progress(done, total):
        if done >= count:
            raise _Stop

    return progress


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A complete store, an interrupted one (150 of 300 committed) and their reference."""
    d = tmp_path_factory.mktemp("integrity")
    complete, partial = d / "complete.h5", d / "partial.h5"
    nf.sample(NET, X, N, SEED, store=complete, batch_size=BATCH, save=SAVE, observables=NTK_OBS)
    with pytest.raises(_Stop):
        nf.sample(
            NET,
            X,
            N,
            SEED,
            store=partial,
            batch_size=BATCH,
            save=SAVE,
            observables=NTK_OBS,
            progress=_stop_at(150),
        )
    reference = nf.sample(NET, X, N, SEED, observables=NTK_OBS)
    return {"complete": complete, "partial": partial, "reference": reference}


def _copy(src, tmp_path, name="c.h5"):
    dst = tmp_path / name
    shutil.copy(src, dst)
    return dst


def _flip_bit(path, offset, bit=3):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ (1 << bit)]))


def _offset(path, name):
    with h5py.File(path, "r", locking=False) as f:
        return f[name].id.get_offset()


def _committed_slot(path, group="accumulator"):
    with h5py.File(path, "r", locking=False) as f:
        committed = int(f.attrs["committed"])
        return next(
            s
            for s in ("slot_0", "slot_1")
            if int(f[f"{group}/{s}"].attrs["committed"]) == committed
        )


def _same_state(a, b):
    return all(
        np.array_equal(x, y)
        for x, y in zip(
            [a.accumulator.block_sums, a.accumulator.block_counts, a.ntk_accumulator.block_sums],
            [b.accumulator.block_sums, b.accumulator.block_counts, b.ntk_accumulator.block_sums],
        )
    )


READERS = {
    "open": lambda p: nf.open(p),
    "info": lambda p: nf.store_info(p),
    "read_raw": lambda p: nf.read_raw(p, 2),
    "reanalyze": lambda p: nf.reanalyze(p),
    "resume": lambda p: nf.resume(p),
}


def _file_digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ------------------------------------------------------------------- named corruptions


def _flip_in_dataset(path, name):
    _flip_bit(path, _offset(path, name) + 17)


def _corrupt_committed_block_sums(path):
    _flip_in_dataset(path, f"accumulator/{_committed_slot(path)}/block_sums")


def _corrupt_committed_ntk_slot(path):
    _flip_in_dataset(path, f"ntk_accumulator/{_committed_slot(path, 'ntk_accumulator')}/block_sums")


def _corrupt_inputs(path):
    _flip_in_dataset(path, "inputs")


def _change_seed_in_config(path):
    with h5py.File(path, "r+", locking=False) as f:
        config = json.loads(f.attrs["config"])
        config["seed"] = 7
        f.attrs["config"] = np.bytes_(json.dumps(config, sort_keys=True).encode())


def _change_dtype_in_config(path):
    with h5py.File(path, "r+", locking=False) as f:
        f.attrs["config"] = f.attrs["config"].replace(b'"float64"', b'"float32"')


CORRUPTIONS = {
    "block_sums": (_corrupt_committed_block_sums, "/accumulator/slot_"),
    "ntk_slot": (_corrupt_committed_ntk_slot, "/ntk_accumulator/slot_"),
    "inputs": (_corrupt_inputs, "/inputs"),
    "config_seed": (_change_seed_in_config, "configuration"),
    "config_dtype": (_change_dtype_in_config, "configuration"),
}


@pytest.mark.parametrize("which", ["complete", "partial"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_corruption_is_a_store_error_naming_the_part(stores, tmp_path, which, corruption, reader):
    corrupt, part = CORRUPTIONS[corruption]
    p = _copy(stores[which], tmp_path)
    corrupt(p)
    before = _file_digest(p)
    with pytest.raises(nf.StoreError, match=part):
        READERS[reader](p)
    assert _file_digest(p) == before  # resume refused before writing anything


def test_flipped_raw_chunk_is_a_store_error(stores, tmp_path):
    p = _copy(stores["complete"], tmp_path)
    with h5py.File(p, "r", locking=False) as f:
        offset = f["raw/layer_2"].id.get_chunk_info(0).byte_offset
    _flip_bit(p, offset + 40)
    for reader in ("read_raw", "reanalyze"):
        with pytest.raises(nf.StoreError, match="/raw/layer_2"):
            READERS[reader](p)
    with pytest.raises(nf.StoreError, match="/raw/layer_2"):
        nf.store_info(p, verify_raw=True)
    nf.store_info(p)  # the header alone is intact
    assert nf.read_raw(p, 1).shape == (N, 4, 2)  # and so is the other layer


def test_every_single_bit_flip_is_refused_or_harmless(stores, tmp_path):
    """A bit flipped anywhere in the file's metadata region and a sample of the rest:
    every reader and resume either refuses it with a StoreError or gives exactly the
    numbers of the intact file (never another exception, never other numbers)."""
    partial = stores["partial"]
    size = os.path.getsize(partial)
    intact_open = nf.open(partial)
    intact_raw = nf.read_raw(partial, 2)
    resumed = nf.resume(_copy(partial, tmp_path, "intact.h5"))
    offsets = sorted(set(range(0, min(size, 16384), 61)) | set(range(16384, size, 4099)))
    outcomes = {"refused": 0, "same": 0}
    for offset in offsets:
        p = _copy(partial, tmp_path)
        _flip_bit(p, offset, bit=offset % 8)
        for name, check in (
            ("open", lambda: _same_state(nf.open(p), intact_open)),
            ("read_raw", lambda: np.array_equal(nf.read_raw(p, 2), intact_raw)),
            ("resume", lambda: _same_state(nf.resume(p), resumed)),
        ):
            try:
                same = check()
            except nf.StoreError:
                outcomes["refused"] += 1
                continue
            except Exception as exc:  # noqa: BLE001 - the type is what is tested
                pytest.fail(f"offset {offset}: {name} raised {type(exc).__name__}: {exc}")
            assert same, f"offset {offset}: {name} returned different numbers"
            outcomes["same"] += 1
    assert outcomes["refused"] > 0 and outcomes["same"] > 0, outcomes


def test_readers_ask_hdf5_for_one_metadata_read_attempt(stores):
    """No retry loop on corrupt metadata (HDF5's SWMR default is 100 attempts with
    growing sleeps: minutes on a corrupt file)."""
    lib = h5files._hdf5_library()
    lib.H5Pget_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_uint)]
    for swmr in (False, True):
        with h5files.open_h5(stores["complete"], "r", swmr=swmr) as f:
            attempts = ctypes.c_uint()
            assert (
                lib.H5Pget_metadata_read_attempts(
                    f.id.get_access_plist().id, ctypes.byref(attempts)
                )
                >= 0
            )
            assert attempts.value == 1


def test_metadata_corruption_is_store_error_not_key_error(stores, tmp_path):
    p = _copy(stores["complete"], tmp_path)
    with h5py.File(p, "r+", locking=False) as f:
        del f["accumulator/slot_0"]
        del f.attrs["checksums"]
    for reader in READERS:
        with pytest.raises(nf.StoreError):
            READERS[reader](p)


# ------------------------------------------------------------------------ files not ours


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all" * 100], ids=["empty", "text"])
def test_resume_never_writes_into_a_foreign_file(tmp_path, content):
    p = tmp_path / "foreign.h5"
    p.write_bytes(content)
    mtime = os.stat(p).st_mtime_ns
    for reader in READERS:
        with pytest.raises(nf.StoreError, match="not an HDF5 file"):
            READERS[reader](p)
    assert p.read_bytes() == content and os.stat(p).st_mtime_ns == mtime


# ----------------------------------------------------------------------- read_raw bounds


def test_read_raw_bounds_are_relative_to_committed(stores, tmp_path):
    p = _copy(stores["partial"], tmp_path)
    with h5py.File(p, "r+", locking=False) as f:  # uncommitted rows after the committed
        dset = f["raw/layer_2"]
        dset.resize(200, axis=0)
        dset[150:200] = 99.0
    full = nf.read_raw(p, 2)
    assert full.shape[0] == 150 and not np.any(full == 99.0)
    np.testing.assert_array_equal(nf.read_raw(p, 2, stop=-1), full[:-1])
    np.testing.assert_array_equal(nf.read_raw(p, 2, -10), full[-10:])
    np.testing.assert_array_equal(nf.read_raw(p, 2, -10, -5), full[-10:-5])
    np.testing.assert_array_equal(nf.read_raw(p, 2, 140, 10**9), full[140:])
    assert nf.read_raw(p, 2, 120, 100).shape == (0, 8, 2)
    for bad in (1.5, "3", True, np.float64(2.0)):
        with pytest.raises(TypeError):
            nf.read_raw(p, 2, bad)
        with pytest.raises(TypeError):
            nf.read_raw(p, 2, 0, bad)


# --------------------------------------------------------------------------- file size


@pytest.mark.parametrize("batch_size", [7, 64, None])
@pytest.mark.parametrize("compression", ["lzf", "gzip"])
def test_store_stays_close_to_its_payload(tmp_path, batch_size, compression):
    p = tmp_path / "size.h5"
    nf.sample(
        NET,
        X,
        12_000,
        1,
        store=p,
        batch_size=batch_size,
        save={2: 8},
        observables=("two_point",),
        compression=compression,
    )
    ratio = os.path.getsize(p) / nf.store.payload_bytes(p)
    assert ratio <= 1.3, ratio


# -------------------------------------------------------------------- sharded overwrite


def test_sharded_overwrite_refuses_a_file_in_use(stores, tmp_path):
    p = _copy(stores["complete"], tmp_path, "busy.h5")
    lock = WriterLock(str(p))  # another writer holds it
    try:
        with cf.ThreadPoolExecutor(1) as pool:
            with pytest.raises(nf.StoreError, match="open by another process"):
                nf.sample(NET, X, 100, 1, executor=pool, store=p, overwrite=True)
    finally:
        lock.release()
    assert nf.open(p).n_networks == N  # untouched


def test_cli_info_verifies_raw_on_request(stores, tmp_path, capsys):
    from nnft_fast.cli import main

    p = _copy(stores["complete"], tmp_path)
    assert main(["info", str(p), "--verify-raw"]) == 0
    with h5py.File(p, "r", locking=False) as f:
        offset = f["raw/layer_1"].id.get_chunk_info(0).byte_offset
    _flip_bit(p, offset + 8)
    assert main(["info", str(p)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as code:
        main(["info", str(p), "--verify-raw"])
    assert code.value.code == 1 and "/raw/layer_1" in capsys.readouterr().err
