"""Sharded ensembles (nnft_fast.distributed) on a real dask.distributed LocalCluster.

What is checked: bit-identical accumulators for 1 worker, 3 workers, a shuffled completion
order and a one-at-a-time executor (fixed shard_size); agreement with the single-machine
``nf.sample`` to rounding (rtol 1e-12; bit-identical with a single shard); a failed shard
resumed from its own committed count; a worker process killed mid-shard; the merged store
file (virtual raw datasets) read back by ``nf.open``, ``read_raw``, ``reanalyze``.
Clusters (issue 18): ``dask_executor`` on a scheduler file, shards restricted to workers
that advertise resources (and resources no worker has refused at once), the executors
accepted (a hand-written Executor, a duck type with only ``submit``) and refused.
"""

import concurrent.futures as cf
import os
import shutil
import sys
import threading
import time

import h5py
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import distributed as nd
from nnft_fast.run import EnsembleRun
from nnft_fast.store import write_shard

dd = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module", autouse=True)
def patient_dask():
    """No Dask deadline a slow machine could miss: connecting (Client, workers) and
    unresponsive TCP connections time out after 30 s by default. Raised for the module
    (the workers' nannies pass the configuration on); a killed worker is still seen at
    once (its sockets close), and a real hang is CI's overall limit."""
    import dask

    with dask.config.set(
        {"distributed.comm.timeouts.connect": "1h", "distributed.comm.timeouts.tcp": "1h"}
    ):
        yield


NETWORK = nf.Network((4, 8, 8, 8), "relu", "gaussian", cw=2.0)
X = np.array([[1.0, -0.5, 0.3, 2.0], [0.2, 0.7, -1.1, 0.4]])
SEED = 11
N = 3000
SHARD = 400  # 8 shards, the last one of 200 networks
SAVE = {1: 8, 3: 2}
BATCH = 50  # networks per committed batch inside a shard
RTOL = 1e-12  # sharded vs one machine: partial sums added in another association


def _register_by_value():
    """Ship this module's helpers to the workers by value (they need not import tests)."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def new_run(save=None, observables=("two_point", "four_point")):
    return EnsembleRun(NETWORK, X, SEED, save=save, observables=observables)


def same_bits(a, b):
    for x, y in ((a.accumulator, b.accumulator), (a.ntk_accumulator, b.ntk_accumulator)):
        if x is None or y is None:
            assert x is None and y is None
            continue
        assert np.array_equal(x.block_counts, y.block_counts)
        assert np.array_equal(x.block_sums, y.block_sums)


def counted_once(ens, first=0, n=N):
    counts = ens.accumulator.block_counts
    expected = np.bincount(np.arange(first, first + n) % counts.size, minlength=counts.size)
    assert counts.sum() == n
    assert np.array_equal(counts, expected)


@pytest.fixture(scope="module")
def reference():
    """Single-machine result; computing it first also fills Numba's on-disk cache, so
    the worker processes load the kernels instead of compiling them."""
    return nf.sample(NETWORK, X, N, SEED)


@pytest.fixture(scope="module")
def executor1(reference):
    with nd.dask_executor(workers=1) as executor:  # LocalCluster, 1 process
        _register_by_value()
        yield executor


@pytest.fixture(scope="module")
def client3(reference):
    with (
        dd.LocalCluster(
            n_workers=3, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        dd.Client(cluster) as client,
    ):
        _register_by_value()
        yield client


class ShuffledExecutor(cf.Executor):
    """Runs the first ``expected`` tasks in this process in a permuted order once all
    of them are submitted (later ones at once), so futures complete out of order."""

    def __init__(self, expected, seed=0):
        self.expected = expected
        self.rng = np.random.default_rng(seed)
        self.jobs = []
        self.order = []

    def submit(self, fn, *args, **kwargs):
        future = cf.Future()
        self.jobs.append((future, fn, args, kwargs))
        if len(self.jobs) == self.expected:
            order = self.rng.permutation(self.expected)
            self.order = [int(i) for i in order]
            threading.Thread(target=self._run, args=(order,)).start()
        elif len(self.jobs) > self.expected:
            threading.Thread(target=self._run, args=([len(self.jobs) - 1],)).start()
        return future

    def _run(self, order):
        for i in order:
            future, fn, args, kwargs = self.jobs[i]
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except Exception as exc:
                    future.set_exception(exc)


def _sabotaged(fn, task, attempt, marker_dir, victim, mode):
    """The shard function, except that the first time shard ``victim`` runs its process
    dies (mode "kill": os._exit) or it raises (mode "raise") right after the shard's
    second committed batch; mode "always" fails that shard every time. A later run of
    the victim records the committed count it found in its file."""
    if task["index"] == victim:
        if mode == "always":
            raise RuntimeError("injected permanent failure")
        marker = os.path.join(marker_dir, "hit")
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            committed = -1
            if task["path"] is not None and os.path.exists(task["path"]):
                committed = nf.store_info(task["path"])["committed"]
            with open(os.path.join(marker_dir, "resumed_from"), "w") as fh:
                fh.write(str(committed))
        else:
            from nnft_fast import store

            original = store._commit_batch
            calls = []

            def commit(*args, **kwargs):
                rows = original(*args, **kwargs)
                calls.append(rows)
                if len(calls) == 2:
                    if mode == "kill":
                        os._exit(17)
                    raise OSError("injected failure after 2 committed batches")
                return rows

            store._commit_batch = commit
            try:
                return fn(task, attempt)
            finally:
                store._commit_batch = original
    return fn(task, attempt)


class Sabotage(cf.Executor):
    """Wraps an executor: every task runs through ``_sabotaged``."""

    def __init__(self, inner, marker_dir, victim, mode):
        self.inner, self.args = inner, (str(marker_dir), victim, mode)

    def submit(self, fn, *args, **kwargs):
        return self.inner.submit(_sabotaged, fn, *args, *self.args)


def test_bit_identical_for_any_workers_and_completion_order(executor1, client3, reference):
    run = new_run()
    one = nd.sample_sharded(run, N, executor1, shard_size=SHARD, threads=1)
    three = nd.sample_sharded(run, N, client3.get_executor(), shard_size=SHARD, threads=1)
    shuffled_executor = ShuffledExecutor(expected=8, seed=3)
    shuffled = nd.sample_sharded(run, N, shuffled_executor, shard_size=SHARD)
    assert shuffled_executor.order != sorted(shuffled_executor.order)
    with cf.ThreadPoolExecutor(2) as pool:
        windowed = nd.sample_sharded(run, N, pool, shard_size=SHARD, max_pending=1)
        single_shard = nd.sample_sharded(run, N, pool, shard_size=N)
    for other in (three, shuffled, windowed):
        same_bits(one, other)
    counted_once(one)
    assert one.network_ranges == ((0, N),)
    # against one machine: identical counts, sums to rounding; one shard: identical bits
    same_bits(single_shard, reference)
    assert np.array_equal(one.accumulator.block_counts, reference.accumulator.block_counts)
    np.testing.assert_allclose(
        one.accumulator.block_sums, reference.accumulator.block_sums, rtol=RTOL, atol=0
    )
    for layer in (1, 3):
        np.testing.assert_allclose(
            one.vertex(layer).value, reference.vertex(layer).value, rtol=1e-9, atol=1e-12
        )


def test_ntk_and_first_network_shards(reference):
    run = new_run(observables=("two_point", "four_point", "ntk"))
    direct = nf.sample(
        NETWORK, X, 500, SEED, first_network=70, observables=("two_point", "four_point", "ntk")
    )
    shuffled = nd.sample_sharded(
        run, 500, ShuffledExecutor(expected=4, seed=1), first_network=70, shard_size=128
    )
    with cf.ThreadPoolExecutor(2) as pool:
        pooled = nd.sample_sharded(run, 500, pool, first_network=70, shard_size=128)
    same_bits(shuffled, pooled)
    counted_once(shuffled, 70, 500)
    assert shuffled.network_ranges == ((70, 570),)
    np.testing.assert_allclose(
        shuffled.ntk_accumulator.block_sums, direct.ntk_accumulator.block_sums, rtol=RTOL, atol=0
    )


def test_merged_store_reads_back(client3, reference, tmp_path):
    main = tmp_path / "run" / "sharded.h5"
    main.parent.mkdir()
    ens = nd.sample_sharded(
        new_run(save=SAVE),
        N,
        client3.get_executor(),
        shard_size=SHARD,
        store=main,
        shard_writer=write_shard,
        threads=1,
        batch_size=BATCH,
    )
    single = str(tmp_path / "single.h5")
    nf.sample(NETWORK, X, N, SEED, store=single, save=SAVE)
    with cf.ThreadPoolExecutor(2) as pool:
        in_memory = nd.sample_sharded(new_run(), N, pool, shard_size=SHARD)
    opened = nf.open(main)
    same_bits(opened, in_memory)
    same_bits(ens, in_memory)
    counted_once(opened)
    assert opened.target_networks == N
    for layer in SAVE:
        assert np.array_equal(nf.read_raw(main, layer), nf.read_raw(single, layer))
    # the raw outputs are virtual datasets over the shard files, named relative to main
    with h5py.File(main, "r") as f:
        dset = f["raw/layer_3"]
        assert dset.is_virtual and dset.shape == (N, 2, 2)
        assert [m.file_name for m in dset.virtual_sources()] == [
            f"sharded.h5.shards/shard_{k:06d}.h5" for k in range(8)
        ]
    info = nf.store_info(main)
    assert info["committed"] == N and info["raw"] == {"layer_1": (N, 8, 2), "layer_3": (N, 2, 2)}
    same_bits(nf.reanalyze(main), nf.reanalyze(single))  # out of core, in index order
    # file and shard directory move together
    moved = tmp_path / "moved"
    shutil.move(str(main.parent), str(moved))
    assert np.array_equal(nf.read_raw(moved / "sharded.h5", 1), nf.read_raw(single, 1))
    with pytest.raises(FileExistsError):
        nd.sample_sharded(
            new_run(save=SAVE),
            N,
            cf.ThreadPoolExecutor(1),
            shard_size=SHARD,
            store=moved / "sharded.h5",
            shard_writer=write_shard,
        )


def test_failed_shard_resumes_from_its_committed_count(client3, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    executor = Sabotage(client3.get_executor(), markers, victim=2, mode="raise")
    ens = nd.sample_sharded(
        new_run(save=SAVE),
        N,
        executor,
        shard_size=SHARD,
        store=tmp_path / "r.h5",
        shard_writer=write_shard,
        threads=1,
        batch_size=BATCH,
    )
    assert (markers / "resumed_from").read_text() == str(2 * BATCH)
    with cf.ThreadPoolExecutor(2) as pool:
        clean = nd.sample_sharded(
            new_run(save=SAVE),
            N,
            pool,
            shard_size=SHARD,
            store=tmp_path / "clean.h5",
            shard_writer=write_shard,
            batch_size=BATCH,
        )
    same_bits(ens, clean)
    counted_once(ens)
    for layer in SAVE:
        assert np.array_equal(
            nf.read_raw(tmp_path / "r.h5", layer), nf.read_raw(tmp_path / "clean.h5", layer)
        )


def test_worker_killed_mid_run(client3, tmp_path):
    """The victim's worker process dies (os._exit) after two committed batches of shard
    5; the nanny restarts it, Dask reruns the shard, which resumes from its file."""
    markers = tmp_path / "markers"
    markers.mkdir()
    executor = Sabotage(client3.get_executor(), markers, victim=5, mode="kill")
    ens = nd.sample_sharded(
        new_run(save=SAVE),
        N,
        executor,
        shard_size=SHARD,
        store=tmp_path / "k.h5",
        shard_writer=write_shard,
        threads=1,
        batch_size=BATCH,
    )
    assert (markers / "hit").exists()
    assert (markers / "resumed_from").read_text() == str(2 * BATCH)  # not from zero
    counted_once(ens)
    with cf.ThreadPoolExecutor(2) as pool:
        clean = nd.sample_sharded(new_run(), N, pool, shard_size=SHARD)
    same_bits(ens, clean)
    assert nf.store_info(nd.shard_path(tmp_path / "k.h5", 5))["committed"] == SHARD
    assert np.array_equal(
        nf.read_raw(tmp_path / "k.h5", 3), nf.preactivations(NETWORK, X, N, SEED)[2][:, :2]
    )


def test_rerun_after_lost_driver_reuses_shard_files(tmp_path):
    main = tmp_path / "m.h5"
    run = new_run(save=SAVE)
    with cf.ThreadPoolExecutor(2) as pool:
        first = nd.sample_sharded(
            run, 1000, pool, shard_size=300, store=main, shard_writer=write_shard
        )
        os.remove(main)  # the driver died before writing the main file
        again = nd.sample_sharded(
            run, 1000, pool, shard_size=300, store=main, shard_writer=write_shard
        )
        same_bits(first, again)
        # shard files of another shard size are refused, not silently reused...
        os.remove(main)
        with pytest.raises(nd.ShardError, match="different configuration"):
            nd.sample_sharded(
                run, 1000, pool, shard_size=400, store=main, shard_writer=write_shard, retries=0
            )
    # ...unless overwrite=True, which starts afresh (once the failed call's other shards
    # have let go of their files: overwrite refuses files in use)
    with cf.ThreadPoolExecutor(2) as pool:
        fresh = nd.sample_sharded(
            run, 1000, pool, shard_size=400, store=main, shard_writer=write_shard, overwrite=True
        )
    counted_once(fresh, 0, 1000)
    assert sorted(os.listdir(nd.shard_directory(main))) == [f"shard_{k:06d}.h5" for k in range(3)]


def test_progress_reports_shards_and_networks():
    calls, shards = [], []

    class Progress:
        def shard_done(self, done, total):
            shards.append((done, total))

        def __call__(self, done, total):
            calls.append((done, total))

    with cf.ThreadPoolExecutor(2) as pool:
        nd.sample_sharded(new_run(), 1000, pool, shard_size=300, progress=Progress())
        plain = []
        nd.sample_sharded(
            new_run(), 1000, pool, shard_size=300, progress=lambda d, t: plain.append((d, t))
        )
    assert shards == [(k, 4) for k in range(1, 5)]
    assert [t for _, t in calls] == [1000] * 4 and calls[-1] == (1000, 1000)
    assert sorted(d for d, _ in calls) == [d for d, _ in calls]
    assert plain[-1] == (1000, 1000) and len(plain) == 4


def test_shard_that_keeps_failing_is_reported(tmp_path):
    with cf.ThreadPoolExecutor(2) as pool:
        executor = Sabotage(pool, tmp_path, victim=1, mode="always")
        with pytest.raises(nd.ShardError, match=r"shard 1 \(networks 300..599\) failed 3 "):
            nd.sample_sharded(new_run(), 1000, executor, shard_size=300, retries=2)


def test_bad_input():
    run = new_run()
    with cf.ThreadPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="concurrent.futures.Executor"):
            nd.sample_sharded(run, 100, object())
        with pytest.raises(TypeError, match="EnsembleRun"):
            nd.sample_sharded(NETWORK, 100, pool)
        for bad in (0, -5):
            with pytest.raises(ValueError, match="shard_size"):
                nd.sample_sharded(run, 100, pool, shard_size=bad)
        with pytest.raises(TypeError, match="shard_size"):
            nd.sample_sharded(run, 100, pool, shard_size=2.5)
        with pytest.raises(ValueError, match="retries"):
            nd.sample_sharded(run, 100, pool, retries=-1)
        with pytest.raises(ValueError, match="n_networks"):
            nd.sample_sharded(run, 1, pool)
        with pytest.raises(ValueError, match="compression"):
            nd.sample_sharded(run, 100, pool, compression="zip")
        with pytest.raises(ValueError, match="backend"):
            nd.sample_sharded(run, 100, pool, backend="tpu")
        cube = nf.Activation("cube", lambda x: x**3, lambda x: 3 * x**2)
        user = EnsembleRun(nf.Network((4, 8), cube, "gaussian"), X, 0)
        with pytest.raises(ValueError, match="built-in activation"):
            nd.sample_sharded(user, 100, pool)
    for bad in ({}, {"scheduler": "tcp://localhost:1", "workers": 2}):
        with pytest.raises(ValueError, match="exactly one"):
            with nd.dask_executor(**bad):
                pass
    with pytest.raises(ValueError, match="workers"):
        with nd.dask_executor(workers=0):
            pass


def test_default_shard_size_depends_on_n_only():
    assert nd.default_shard_size(10) == nd.MIN_DEFAULT_SHARD
    assert nd.default_shard_size(10**6) == 15625
    assert nd.default_shard_size(10**12) == nd.MAX_DEFAULT_SHARD
    assert nd.shard_ranges(5, 10, 4) == [(5, 4), (9, 4), (13, 2)]


def test_sample_executor_route(client3, tmp_path):
    """nf.sample(executor=...) is the sharded engine; the merged file is read-only."""
    direct = nd.sample_sharded(new_run(), N, client3.get_executor(), shard_size=SHARD)
    routed = nf.sample(NETWORK, X, N, SEED, executor=client3.get_executor(), shard_size=SHARD)
    same_bits(routed, direct)
    with pytest.raises(ValueError, match="shard_size needs executor"):
        nf.sample(NETWORK, X, N, SEED, shard_size=SHARD)
    path = tmp_path / "merged.h5"
    with cf.ThreadPoolExecutor(2) as pool:
        nf.sample(NETWORK, X, 600, SEED, executor=pool, shard_size=SHARD, store=path)
    with pytest.raises(nf.StoreError, match="merged view of a sharded run"):
        nf.resume(path)


def test_cli_workers_runs_a_local_cluster(tmp_path, capsys, reference):
    from nnft_fast.cli import main

    from .test_cli import SMALL, write_config

    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=1200))
    out = tmp_path / "cli.h5"
    assert main(["run", cfg, "--out", str(out), "--workers", "2", "--shard-size", "500"]) == 0
    err = capsys.readouterr().err
    assert "shards 3/3" in err and "across workers" in err
    ens = nf.open(out)
    counted_once(ens, 0, 1200)
    single = nf.sample(ens.network, ens.inputs, 1200, 3)
    np.testing.assert_allclose(
        ens.accumulator.block_sums, single.accumulator.block_sums, rtol=RTOL, atol=0
    )
    with pytest.raises(SystemExit) as code:  # a usage error, the problem named
        main(["run", cfg, "--out", str(tmp_path / "x.h5"), "--shard-size", "500"])
    assert code.value.code == 2
    assert "--shard-size needs --scheduler, --scheduler-file or --workers" in (
        capsys.readouterr().err
    )


# --------------------------------------------------------------------------- clusters


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory, reference):
    """One in-process Dask worker with 2 task threads that advertises {"GPU": 1}, and the
    scheduler file a client wrote for it (the file ``dask scheduler --scheduler-file``
    writes on a cluster)."""
    path = tmp_path_factory.mktemp("dask") / "scheduler.json"
    with (
        dd.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            resources={"GPU": 1},
            dashboard_address=":0",
        ) as cluster,
        dd.Client(cluster) as client,
    ):
        client.write_scheduler_file(str(path))
        yield client, path


def _interval(seconds, key):
    """(start, end) of a sleep of ``seconds`` (``key`` keeps Dask's pure tasks apart)."""
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


def _intervals(executor, n=2, seconds=0.4):
    return sorted(f.result() for f in [executor.submit(_interval, seconds, k) for k in range(n)])


def test_scheduler_file_and_resources(gpu_cluster):
    """Through the scheduler file the sharded run gives the same bits; with resources
    GPU=1 the worker's two task threads run one shard-like task at a time (each needs
    its one GPU), without them both at once."""
    _, path = gpu_cluster
    run = new_run()
    with cf.ThreadPoolExecutor(2) as pool:
        expected = nd.sample_sharded(run, 1000, pool, shard_size=400)
    with nd.dask_executor(scheduler_file=path) as executor:
        same_bits(nd.sample_sharded(run, 1000, executor, shard_size=400, threads=1), expected)
        (a_start, a_end), (b_start, b_end) = _intervals(executor)
        assert b_start < a_end  # two task threads: the tasks overlap
    with nd.dask_executor(scheduler_file=str(path), resources={"GPU": 1}) as executor:
        same_bits(nd.sample_sharded(run, 1000, executor, shard_size=400, threads=1), expected)
        (a_start, a_end), (b_start, b_end) = _intervals(executor)
        assert b_start >= a_end  # one GPU: one task at a time


def test_resources_no_worker_has_are_refused_at_once(gpu_cluster):
    client, path = gpu_cluster
    for resources, missing in (
        ({"TPU": 1}, "TPU=1"),
        ({"GPU": 2}, "GPU=2"),
        ({"GPU": 1, "TPU": 1}, "TPU=1"),
    ):
        with pytest.raises(ValueError) as info:
            with nd.dask_executor(scheduler=client.scheduler.address, resources=resources):
                pass
        assert f"missing: {missing};" in str(info.value)
        assert "1 connected workers advertise: GPU=1" in str(info.value)


def test_dask_executor_arguments(tmp_path):
    with pytest.raises(ValueError, match="exactly one.*got scheduler and scheduler_file"):
        with nd.dask_executor(scheduler="tcp://localhost:1", scheduler_file="s.json"):
            pass
    with pytest.raises(ValueError, match="running cluster"):
        with nd.dask_executor(workers=1, resources={"GPU": 1}):
            pass
    for bad, error in (({"GPU": 0}, ValueError), ({"GPU": "1"}, TypeError), ([1], TypeError)):
        with pytest.raises(error, match="resources"):
            with nd.dask_executor(scheduler="tcp://localhost:1", resources=bad):
                pass
    missing = tmp_path / "never.json"
    with pytest.raises(FileNotFoundError, match="never.json after 0.2 s"):
        with nd.dask_executor(scheduler_file=missing, timeout=0.2):
            pass
    assert nd.parse_resources("GPU=1,MEM=10e9") == {"GPU": 1, "MEM": 1e10}
    assert nd.parse_resources("GPU=0.5 FPGA=2") == {"GPU": 0.5, "FPGA": 2}
    for bad in ("GPU", "=1", "GPU=x", "GPU=0"):
        with pytest.raises(ValueError, match="resources"):
            nd.parse_resources(bad)


class InlineExecutor(cf.Executor):
    """The least an Executor needs here: ``submit`` returning a concurrent.futures.Future
    (this one runs the task at once, in the caller's thread)."""

    def submit(self, fn, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


class SubmitOnly:
    """Not an Executor subclass: a duck type with only ``submit`` (accepted)."""

    submit = InlineExecutor.submit


class Handle:
    """A future-like object that is no concurrent.futures.Future."""

    cancelled = False

    def result(self):
        return None

    def cancel(self):
        self.cancelled = True


class HandleExecutor:
    def __init__(self):
        self.handles = []

    def submit(self, fn, *args):
        self.handles.append(Handle())
        return self.handles[-1]


def test_executors_accepted_and_refused(gpu_cluster):
    run = new_run()
    with cf.ThreadPoolExecutor(2) as pool:
        expected = nd.sample_sharded(run, 1000, pool, shard_size=400)
    same_bits(nd.sample_sharded(run, 1000, InlineExecutor(), shard_size=400), expected)
    same_bits(nd.sample_sharded(run, 1000, SubmitOnly(), shard_size=400), expected)
    handles = HandleExecutor()
    with pytest.raises(
        TypeError,
        match=r"HandleExecutor.submit returned a tests.test_distributed.Handle, not a "
        r"concurrent.futures.Future",
    ):
        nd.sample_sharded(run, 1000, handles, shard_size=400)
    assert len(handles.handles) == 1 and handles.handles[0].cancelled
    with pytest.raises(TypeError, match="got object, which has no submit method"):
        nd.sample_sharded(run, 1000, object())
    client, _ = gpu_cluster
    with pytest.raises(TypeError, match=r"a Dask Client.*pass client.get_executor\(\)"):
        nd.sample_sharded(run, 1000, client)
