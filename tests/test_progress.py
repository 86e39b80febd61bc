"""Progress lines (nnft_fast.progress) and the library's logging (issue 18, point 4).

Progress: terminal vs log streams (redraw with '\\r' vs one line per update, and how
often), the rate and ETA counting only the batches after the first, the first line
saying how long Numba compiled (a freshly made @njit function compiles between
``started`` and the first update), ``progress=True`` in nf.sample, nf.resume and
sample_sharded, the ``started`` hook of every driver. Logging: the package logger's
NullHandler, the backend "auto" chose and why, a resume, retried and failed shards,
shard files reused and resumed, the merged store written (pytest's caplog).
"""

import concurrent.futures as cf
import io
import logging
import os

import numba
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import backends, progress
from nnft_fast import distributed as nd
from nnft_fast.progress import LOG_INTERVAL, TTY_INTERVAL, Progress, ShardProgress
from nnft_fast.run import EnsembleRun
from nnft_fast.store import sample_to_store, write_shard

NET = nf.Network((3, 6, 5), "tanh", "gaussian", 1.5, 0.1)
X = np.array([[1.0, 0.5, -0.5], [0.2, -1.0, 0.3]])


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class Clock:
    """A fake clock: ``clock.now`` seconds, moved by the test."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_progress(tty, cls=Progress, **kwargs):
    stream, clock = Stream(tty), Clock()
    return cls(stream=stream, clock=clock, **kwargs), stream, clock


class Recorder:
    """A progress callback with every hook: records the calls in order."""

    def __init__(self):
        self.calls = []

    def started(self, done, total):
        self.calls.append(("started", done, total))

    def shard_done(self, done, total):
        self.calls.append(("shard_done", done, total))

    def __call__(self, done, total):
        self.calls.append(("progress", done, total))


# --------------------------------------------------------------------------- the line


def test_log_stream_one_line_per_update_every_tenth_or_interval():
    p, stream, clock = fake_progress(tty=False)
    p.started(0, 1000)
    for done in range(10, 1001, 10):  # 100 batches, 0.1 s each: a tenth every second
        clock.now += 0.1
        p(done, 1000)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 1 + 1 + 10  # start, first batch, tenths
    assert lines[0] == "starting (compiling kernels on first use)"
    assert lines[1].startswith("10/1,000 networks  first batch 0.1 s")
    assert [line.split()[0] for line in lines[2:]] == [f"{k * 100:,}/1,000" for k in range(1, 11)]
    assert "done in 0:00:10" in lines[-1]
    # a slow run: a line every LOG_INTERVAL seconds between the tenths
    p, stream, clock = fake_progress(tty=False)
    p.started(0, 10**6)
    for done in range(1, 9):
        clock.now += LOG_INTERVAL / 2
        p(done, 10**6)
    assert len(stream.getvalue().splitlines()) == 1 + 1 + 3  # at 2, 4, 6 x interval/2 after


def test_terminal_redraws_one_line_in_place():
    p, stream, clock = fake_progress(tty=True)
    p.started(0, 100)
    assert stream.getvalue() == "\rstarting (compiling kernels on first use)"
    written = []
    for done in range(10, 101, 10):
        clock.now += TTY_INTERVAL / 2 + 0.01
        before = len(stream.getvalue())
        p(done, 100)
        written.append(stream.getvalue()[before:])
    updates = [w for w in written if w]
    assert all(w.startswith("\r") for w in updates)
    assert [w for w in written[:-1] if "\n" in w] == []  # one line until the end
    assert written[-1].endswith("\n") and "100/100" in written[-1]
    assert len(updates) == 6  # the first batch, every second one after it, the last
    # the first batch's line, shorter than the start line, is padded over all of it
    assert len(written[0]) - 1 >= len("starting (compiling kernels on first use)")


def lines_of(first_done, updates, total=1000):
    """The lines of a log-stream Progress that updates at every call: started at
    ``first_done`` networks at time 0, then ``progress(done, total)`` at each
    (time, done) of ``updates``."""
    p, stream, clock = fake_progress(tty=False, interval=0)
    p.started(first_done, total)
    for clock.now, done in updates:
        p(done, total)
    return stream.getvalue().splitlines()


def test_rate_and_eta_exclude_the_first_batch():
    # a first batch of 100 networks that took 100 s (compiling), then 100 networks/s
    lines = lines_of(0, [(100.0, 100), (101.0, 200), (102.0, 300)])
    assert lines[1] == "100/1,000 networks  first batch 100.0 s"
    assert lines[2] == "200/1,000 networks  100/s  ETA 0:00:08"  # not 200/101 s
    assert lines[3] == "300/1,000 networks  100/s  ETA 0:00:07"
    assert progress.clock_text(30 * 3600 + 61) == "30:01:01"  # hours past a day


def test_resumed_run_counts_its_rate_from_the_committed_networks():
    lines = lines_of(600, [(5.0, 700), (7.0, 900)])
    assert lines[0] == "resuming at 600/1,000 networks (compiling kernels on first use)"
    assert lines[2] == "900/1,000 networks  100/s  ETA 0:00:01"


def test_first_line_reports_compilation_only_when_numba_compiled():
    p, stream, _ = fake_progress(tty=False)
    p.started(0, 10)

    @numba.njit
    def fresh(x):  # a new dispatcher: compiled on this first call
        return x + 1.0

    fresh(1.0)
    p(5, 10)
    first = stream.getvalue().splitlines()[1]
    assert "s of it compiling kernels (first run only)" in first
    q, stream, _ = fake_progress(tty=False)
    q.started(0, 10)
    fresh(2.0)  # compiled already
    q(5, 10)
    assert "compiling" not in stream.getvalue().splitlines()[1]


def test_quiet_writes_nothing_and_shard_progress_names_shards():
    p, stream, _ = fake_progress(tty=False, quiet=True)
    p.started(0, 10)
    p(10, 10)
    assert stream.getvalue() == ""
    p, stream, clock = fake_progress(tty=False, cls=ShardProgress)
    p.started(0, 300)
    for k in (1, 2, 3):
        clock.now += 1.0
        p.shard_done(k, 3)
        p(100 * k, 300)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("starting 300 networks in shards")
    assert lines[1].startswith("shards 1/3  100/300 networks  first shard 1.0 s")
    assert lines[-1].startswith("shards 3/3  300/300 networks  100/s across workers  done in")


# --------------------------------------------------------------------------- drivers


def test_progress_true_everywhere(tmp_path, capsys):
    nf.sample(NET, X, 40, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("starting (compiling kernels on first use)\n")
    assert "40/40 networks" in err and "\r" not in err  # captured stderr is no terminal
    nf.sample(NET, X, 40, batch_size=10, progress=False)
    nf.sample(NET, X, 40, batch_size=10, progress=None)
    assert capsys.readouterr().err == ""
    with cf.ThreadPoolExecutor(2) as pool:
        nf.sample(NET, X, 40, executor=pool, shard_size=20, progress=True)
        assert "shards 2/2" in capsys.readouterr().err
        nd.sample_sharded(EnsembleRun(NET, X, 0), 40, pool, shard_size=20, progress=True)
        assert "across workers" in capsys.readouterr().err
    path = tmp_path / "r.h5"
    with pytest.raises(KeyboardInterrupt):
        nf.sample(NET, X, 40, store=path, batch_size=10, progress=_stop_after_first)
    nf.resume(path, progress=True)
    err = capsys.readouterr().err
    assert err.startswith("resuming at 10/40 networks") and "40/40 networks" in err
    with pytest.raises(TypeError, match="progress must be True, False, None or a callable"):
        nf.sample(NET, X, 4, progress="yes")
    with pytest.raises(TypeError, match="progress"):
        nf.resume(path, progress=3)


def _stop_after_first(done, total):
    raise KeyboardInterrupt


def test_every_driver_calls_started_first(tmp_path):
    plain = Recorder()
    nf.sample(NET, X, 30, batch_size=10, progress=plain)
    assert plain.calls == [("started", 0, 30)] + [("progress", d, 30) for d in (10, 20, 30)]
    stored = Recorder()
    nf.sample(NET, X, 30, batch_size=10, store=tmp_path / "s.h5", progress=stored)
    assert stored.calls[0] == ("started", 0, 30) and stored.calls[-1] == ("progress", 30, 30)
    sharded = Recorder()
    with cf.ThreadPoolExecutor(2) as pool:
        nd.sample_sharded(EnsembleRun(NET, X, 0), 30, pool, shard_size=10, progress=sharded)
    assert sharded.calls[0] == ("started", 0, 30)
    assert [c for c in sharded.calls if c[0] == "shard_done"] == [
        ("shard_done", k, 3) for k in (1, 2, 3)
    ]


# --------------------------------------------------------------------------- logging


def test_package_logger_has_only_a_null_handler():
    handlers = logging.getLogger("nnft_fast").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)


def test_backend_choice_is_logged_with_its_reason(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="nnft_fast")
    monkeypatch.setattr(backends, "_cuda_status", lambda: (False, "no GPU here (test)"))
    nf.sample(NET, X, 4)
    nf.sample(NET, X, 4, backend="cpu")  # asked for: not an INFO event
    infos = [r for r in caplog.records if r.name == "nnft_fast.backends"]
    assert [(r.levelno, r.getMessage()) for r in infos] == [
        (logging.INFO, "backend 'auto' chose 'cpu' for this run: no GPU here (test)")
    ]


def test_auto_logs_why_the_gpu_kernels_do_not_cover_a_job(monkeypatch, caplog):
    pytest.importorskip("numba_cuda", reason="the 'cuda' extra is not installed")
    caplog.set_level(logging.INFO, logger="nnft_fast")
    monkeypatch.setattr(backends, "_cuda_status", lambda: (True, "a GPU (test)"))
    run = EnsembleRun(NET, X, 0, dtype=np.float32)  # the GPU kernels are float64 only
    assert run.backend == "cpu"
    assert caplog.messages == [
        "backend 'auto' chose 'cpu' for this run: the GPU kernels do not cover it "
        "(the GPU kernels compute in float64 only)"
    ]


def test_resume_is_logged(tmp_path, caplog):
    path = tmp_path / "r.h5"
    with pytest.raises(KeyboardInterrupt):
        nf.sample(NET, X, 40, store=path, batch_size=10, progress=_stop_after_first)
    caplog.set_level(logging.INFO, logger="nnft_fast.store")
    nf.resume(path, backend="cpu")
    nf.resume(path, backend="cpu")
    assert caplog.messages == [
        f"resuming {path}: 10 of 40 networks committed, 30 left, on backend 'cpu'",
        f"{path} is complete (40 networks): nothing to resume",
    ]


class Flaky(cf.Executor):
    """Runs tasks on a thread pool; shard ``victim``'s first ``failures`` submissions fail."""

    def __init__(self, pool, victim, failures):
        self.pool, self.victim, self.failures = pool, victim, failures

    def submit(self, fn, task, attempt):
        if task["index"] == self.victim and self.failures > 0:
            self.failures -= 1
            return self.pool.submit(_fail)
        return self.pool.submit(fn, task, attempt)


def _fail():
    raise RuntimeError("injected")


def test_shard_retries_and_failures_are_logged(caplog):
    caplog.set_level(logging.INFO, logger="nnft_fast.distributed")
    run = EnsembleRun(NET, X, 0)
    with cf.ThreadPoolExecutor(2) as pool:
        nd.sample_sharded(run, 30, Flaky(pool, victim=1, failures=1), shard_size=10)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            "shard 1 (networks 10..19) failed (attempt 1 of 3): RuntimeError: injected; resubmitted"
        ]
        caplog.clear()
        with pytest.raises(nd.ShardError):
            nd.sample_sharded(run, 30, Flaky(pool, 1, 3), shard_size=10, retries=1)
    levels = [r.levelname for r in caplog.records if r.levelno >= logging.WARNING]
    assert levels == ["WARNING", "ERROR"]
    assert "shard 1 (networks 10..19) failed 2 times; last error: RuntimeError" in caplog.text


def test_reused_and_resumed_shards_and_the_merged_store_are_logged(tmp_path, caplog):
    main = tmp_path / "m.h5"
    run = EnsembleRun(NET, X, 0, save={2: 2})
    with cf.ThreadPoolExecutor(2) as pool:
        nd.sample_sharded(run, 30, pool, shard_size=10, store=main, shard_writer=write_shard)
        main.unlink()  # the driver died before writing the main file
        # shard 2's file was left half-written by a killed worker
        shard2 = nd.shard_path(main, 2)
        os.remove(shard2)
        with pytest.raises(KeyboardInterrupt):
            sample_to_store(
                run, 10, shard2, first_network=20, batch_size=4, progress=_stop_after_first
            )
        caplog.set_level(logging.INFO, logger="nnft_fast")
        nd.sample_sharded(run, 30, pool, shard_size=10, store=main, shard_writer=write_shard)
    messages = [r.getMessage() for r in caplog.records if r.name == "nnft_fast.distributed"]
    assert "shard 0 (networks 0..9): reused its complete file (from an earlier attempt or run)" in (
        messages
    )
    assert "shard 2 (networks 20..29): resumed its file at 4 of 10 networks" in messages
    assert "3 shards merged (2 complete shard files reused, 1 resumed)" in messages
    assert messages[-1] == (f"wrote {main}: 30 networks merged from 3 shard files in {main}.shards")
    store_messages = [r.getMessage() for r in caplog.records if r.name == "nnft_fast.store"]
    assert f"resuming {shard2}: 4 of 10 networks committed, 6 left, on backend 'cpu'" in (
        store_messages
    )
