"""Progress lines for long runs: the ``progress=`` callbacks of ``nf.sample``,
``nf.resume``, ``distributed.sample_sharded`` and the CLI (``progress=True`` is a
``Progress`` on stderr, ``run.check_progress``).

A callback is called as ``progress(done, total)`` after every batch (or shard). One that
also has a ``started(done, total)`` method is told when the run begins, before its first
batch (``notify_started``); ``Progress`` then says that the kernels compile on first use
and listens to Numba's compile events, so the first line states how long the first batch
took and how much of it was compilation. The rate (networks/s) and the ETA count the
batches after the first only: the first one's compile time does not dilute them.

On a terminal the line is redrawn in place ('\\r') at most every ``TTY_INTERVAL`` seconds;
on any other stream (a batch job's log) every update is a line of its own, written when
``LOG_INTERVAL`` seconds have passed since the last one or the run has crossed another
``LOG_STEP`` of its networks, and always at the end.
"""

import contextlib
import sys
import time

TTY_INTERVAL = 0.5  # seconds between redraws of a terminal's progress line
LOG_INTERVAL = 10.0  # seconds between the lines of a log (a stream that is no terminal)
LOG_STEP = 0.1  # ... and a line whenever another tenth of the networks is done
COMPILE_EVENT = "numba:compile"  # Numba's event around a real compilation (not a cache load)


def is_terminal(stream):
    """Whether ``stream`` is a terminal (``isatty()``; False without one or when closed)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):
        return False


def clock_text(seconds):
    """``seconds`` as H:MM:SS (hours unbounded: a 30-hour ETA reads 30:00:00)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def notify_started(progress, done, total):
    """Tell a progress callback that has a ``started(done, total)`` method that the run
    begins (``done`` networks already committed, as in a resumed store)."""
    started = getattr(progress, "started", None)
    if callable(started):
        started(done, total)


class Progress:
    """Progress line: networks done, networks per second, ETA; ``progress(done, total)``.

    stream: where the line goes (default ``sys.stderr`` at each write). interval: seconds
    between updates (default ``TTY_INTERVAL`` on a terminal, ``LOG_INTERVAL`` otherwise).
    clock: the time source (seconds; a fake one in tests).
    """

    listens_to_compiler = True  # the kernels compile in this process

    def __init__(self, quiet=False, stream=None, interval=None, *, clock=time.perf_counter):
        self.quiet = quiet
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.begun = clock()  # when the run began: made, or told by started()
        self.first = None  # (time, done) of the first update: the rate counts from it
        self.last_time = None
        self.last_step = -1
        self.width = 0  # length of the terminal line to overwrite
        self._compiling = None  # Numba compile-event listener during the first batch

    # ------------------------------------------------------------------ wording
    def starting_text(self, done, total):
        what = "starting" if done == 0 else f"resuming at {done:,}/{total:,} networks"
        return f"{what} (compiling kernels on first use)"

    def first_text(self, done, total, seconds, compile_seconds):
        text = f"{done:,}/{total:,} networks  first batch {seconds:.1f} s"
        if compile_seconds is not None:
            text += f", {compile_seconds:.1f} s of it compiling kernels (first run only)"
        return text

    def describe(self, done, total, rate, tail):
        return f"{done:,}/{total:,} networks  {rate:,.0f}/s  {tail}"

    # ------------------------------------------------------------------ callbacks
    def started(self, done, total):
        """The run begins (before its first batch): say so, time the compilation."""
        if self.quiet:
            return
        self.begun = self.clock()
        self.first = None  # a Progress used for another run starts afresh
        if self.listens_to_compiler:
            self._listen()
        self._write(self.starting_text(done, total), done, total, final=False)

    def __call__(self, done, total):
        if self.quiet:
            return
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
            text = self.first_text(done, total, now - self.begun, self._stop_listening())
        elif done >= total or self._due(now, done, total):
            since, done_then = self.first
            rate = (done - done_then) / max(now - since, 1e-9)
            if done >= total:
                tail = f"done in {clock_text(now - self.begun)}"
            else:
                tail = f"ETA {clock_text((total - done) / rate)}" if rate > 0 else "ETA --"
            text = self.describe(done, total, rate, tail)
        else:
            return
        self._write(text, done, total, final=done >= total)

    # ------------------------------------------------------------------ mechanics
    def _stream(self):
        return self.stream or sys.stderr

    def _due(self, now, done, total):
        terminal = is_terminal(self._stream())
        interval = self.interval
        if interval is None:
            interval = TTY_INTERVAL if terminal else LOG_INTERVAL
        if now - self.last_time >= interval:
            return True
        return not terminal and self._step(done, total) > self.last_step

    @staticmethod
    def _step(done, total):
        return int(done / max(total, 1) / LOG_STEP + 1e-9)

    def _write(self, text, done, total, final):
        stream = self._stream()
        if is_terminal(stream):
            stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = 0 if final else len(text)
        else:
            stream.write(text + "\n")
        stream.flush()
        self.last_time = self.clock()
        self.last_step = self._step(done, total)

    def _listen(self):
        """Time Numba's compilations from now on. Only the CPU compiler broadcasts them:
        numba-cuda sends no compile events, so a GPU run's first line gives the first
        batch's time alone (its CUDA compilation included, not singled out)."""
        from numba.core import event

        self._stop_listening()
        self._compiling = event.TimingListener()
        event.register(COMPILE_EVENT, self._compiling)

    def _stop_listening(self):
        """Seconds Numba spent compiling since ``_listen`` (None: nothing compiled, or
        nobody listened)."""
        listener, self._compiling = self._compiling, None
        if listener is None:
            return None
        from numba.core import event

        with contextlib.suppress(ValueError):
            event.unregister(COMPILE_EVENT, listener)
        return listener.duration if listener.done else None

    def __del__(self):  # a run that failed before its first batch: stop listening
        if getattr(self, "_compiling", None) is not None:
            try:
                self._stop_listening()
            except Exception:  # interpreter shutdown: nothing left to unregister from
                pass


class ShardProgress(Progress):
    """Progress of a sharded run: shards done, networks done, networks per second across
    all workers, ETA (``sample_sharded`` also calls ``shard_done(done, total)``).

    The workers compile the kernels (in their own processes), so the first line says how
    long the first shard took, start-up and compilation included; the rate counts the
    shards after it.
    """

    listens_to_compiler = False

    def __init__(self, quiet=False, stream=None, interval=None, *, clock=time.perf_counter):
        super().__init__(quiet, stream, interval, clock=clock)
        self.shards = (0, 0)

    def shard_done(self, done, total):
        self.shards = (done, total)

    def _shard_text(self):
        return f"shards {self.shards[0]}/{self.shards[1]}"

    def starting_text(self, done, total):
        return f"starting {total:,} networks in shards (workers compile kernels on first use)"

    def first_text(self, done, total, seconds, compile_seconds):
        return (
            f"{self._shard_text()}  {done:,}/{total:,} networks  first shard {seconds:.1f} s "
            "(with the workers' start-up and first-use compilation)"
        )

    def describe(self, done, total, rate, tail):
        return (
            f"{self._shard_text()}  {done:,}/{total:,} networks  "
            f"{rate:,.0f}/s across workers  {tail}"
        )
