"""Subprocess target for tests/test_store.py: stream an ensemble into a store file.

Usage: python _kill_target.py PATH [N_NETWORKS [BATCH_SIZE [SLEEP_PER_BATCH [step]]]]

With ``step`` the writer waits for a line on stdin after every batch (until stdin
closes), so a test can watch it batch by batch whatever the machine's speed.

The test kills this process (SIGKILL) at various moments and checks the file it leaves.
The run configuration lives here (NETWORK, X, SEED, SAVE) so the test can rebuild the
uninterrupted reference from the very same values.
"""

import sys
import time

import numpy as np

import nnft_fast as nf

NETWORK = nf.Network((4, 8, 8, 8), "relu", "gaussian", cw=2.0)
X = np.array([[1.0, -0.5, 0.3, 2.0], [0.2, 0.7, -1.1, 0.4]])
SEED = 1234
SAVE = {1: 8, 3: 2}
N_NETWORKS = 4000
BATCH_SIZE = 20


def main(argv):
    path = argv[1]
    n_networks = int(argv[2]) if len(argv) > 2 else N_NETWORKS
    batch_size = int(argv[3]) if len(argv) > 3 else BATCH_SIZE
    pause = float(argv[4]) if len(argv) > 4 else 0.0
    stepped = {"on": len(argv) > 5 and argv[5] == "step"}

    def progress(done, total):
        if pause:
            time.sleep(pause)
        if stepped["on"]:
            stepped["on"] = sys.stdin.readline() != ""  # EOF: run freely

    nf.sample(
        NETWORK,
        X,
        n_networks,
        SEED,
        store=path,
        save=SAVE,
        batch_size=batch_size,
        progress=progress,
    )
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv)
