"""Progress lines on stderr for long runs (the CLI's ``progress=`` callbacks)."""

import sys
import time


class Progress:
    """Progress line: networks done, networks per second, ETA; ``progress(done, total)``."""

    def __init__(self, quiet=False, stream=None, interval=0.5):
        self.quiet = quiet
        self.stream = stream
        self.interval = interval
        self.start = time.perf_counter()
        self.last = 0.0

    def describe(self, done, total, rate, eta):
        return f"{done:,}/{total:,} networks  {rate:,.0f}/s  ETA {eta}"

    def __call__(self, done, total):
        if self.quiet:
            return
        now = time.perf_counter()
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = time.strftime("%H:%M:%S", time.gmtime((total - done) / rate)) if rate > 0 else "--"
        end = "\n" if done >= total else ""
        stream = self.stream or sys.stderr
        stream.write(f"\r{self.describe(done, total, rate, eta)}{end}")
        stream.flush()


class ShardProgress(Progress):
    """Progress of a sharded run: shards done, networks done, networks per second across
    all workers, ETA (``sample_sharded`` also calls ``shard_done(done, total)``)."""

    def __init__(self, quiet=False, stream=None, interval=0.5):
        super().__init__(quiet, stream, interval)
        self.shards = (0, 0)

    def shard_done(self, done, total):
        self.shards = (done, total)

    def describe(self, done, total, rate, eta):
        return (
            f"shards {self.shards[0]}/{self.shards[1]}  {done:,}/{total:,} networks  "
            f"{rate:,.0f}/s across workers  ETA {eta}"
        )
