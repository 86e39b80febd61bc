#!/bin/bash
# A sharded nnft_fast run on SLURM, Dask's HPC way: a scheduler that writes its address
# to a shared "scheduler file", workers and the driver that read it. Needs only
# nnft_fast[dask] installed (the same version) on every node, and a file system every node
# shares (the scheduler file and the store's shard files live on it).
#
#     sbatch examples/cluster/slurm_scheduler_file.sh
#
# Output: $OUT (the merged store, read it with nf.open) and $OUT.shards/ (the shard files;
# keep them beside it). If the job dies, submit it again: finished shards are reused.
#
#SBATCH --job-name=nnft-sharded
#SBATCH --nodes=4
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --time=02:00:00
#SBATCH --output=nnft-%j.log
#
# GPU nodes (every worker computes its shards on its GPU): add
#   #SBATCH --gres=gpu:1
# start the workers with  --resources "GPU=1"  and run the driver with
#   nnft run "$CONFIG" --scheduler-file "$SCHED" --resources GPU=1 --backend cuda --out "$OUT"
# (shards then run only on workers that advertise a GPU).

set -euo pipefail

CONFIG=${CONFIG:-examples/r1_relu_orthogonal.toml}
OUT=${OUT:-$PWD/r1-sharded.h5}
SCHED=$PWD/dask-scheduler-$SLURM_JOB_ID.json  # on the shared file system

# 1. The scheduler, in the background on the first node of the allocation (where this
#    script runs); it writes its address to $SCHED.
dask scheduler --scheduler-file "$SCHED" &

# 2. One worker process per SLURM task, one task thread each (one shard at a time); the
#    shard's Numba kernels use the task's CPUs (--threads below).
srun --ntasks="$SLURM_NTASKS" --cpus-per-task="$SLURM_CPUS_PER_TASK" \
    dask worker --scheduler-file "$SCHED" --nworkers 1 --nthreads 1 \
    --memory-limit 0 &

# 3. The driver: waits for the scheduler file, submits the shards, merges them into $OUT.
#    The progress lines go to the job's log: one line every 10 s and at each tenth;
#    -v adds the events (retried shards, shard files reused after a crash).
nnft run "$CONFIG" --scheduler-file "$SCHED" --threads "$SLURM_CPUS_PER_TASK" --out "$OUT" -v

# Stop the workers and the scheduler with the job.
kill %1 %2 2>/dev/null || true
