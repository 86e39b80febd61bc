#!/usr/bin/env bash
# One prepared GPU check (issue 19.3): on a machine with one H100/H200, from a bare copy
# of the repository, in under 8 minutes:
#   1. setup            stage an importable tree (nnft_fast + kernels, tests, bench) in a
#                       temporary folder; install wheels from <repo>/.whl if that exists
#   2. env              versions, the GPU Numba sees (OUT/env.json)
#   3. test_cuda*       the CUDA kernels for real against the CPU kernels: the four
#                       tests/test_cuda*.py modules with NNFT_CUDA_REAL_GPU=1 (their
#                       _cuda_sim_*.py targets run on the GPU, not the simulator; the same
#                       limits), in parallel; every difference in OUT/cuda_diffs.json
#   4. bench_gpu        python -m bench.gpu: CUDA vs CPU check, copy bandwidth, generator,
#                       networks/s of R1 (projected Gaussian, orthogonal, dense), wide, and
#                       the d = 3 cos-net fields F1, F2, ~BUDGET s per config and backend
#   5. bench_deformed   bench/gpu_check.py deformed: a d = 3 cos-net field with lambda phi^4
#                       (Q = 15^3 nodes), CUDA vs CPU, then networks/s of both, ~BUDGET s
#   6. summary          OUT/summary.txt and OUT/summary.json
# Every step runs under `timeout`; a failed step does not stop the next. Exit code: the sum
# of the failed steps' bits (1 setup, 2 env, 4 test_cuda, 8 test_cuda_field,
# 16 test_cuda_ntk, 64 test_cuda_deformation, 256 test_cuda_rng, 32 bench_gpu,
# 128 bench_deformed;
# bench/gpu_check.py STEPS), 0 when all passed.
#
#   bench/gpu_check.sh OUT              # on the GPU machine (~5-7 min)
#   bench/gpu_check.sh OUT --simulator  # the same steps on the CUDA simulator, tiny sizes
#   bench/gpu_check.sh OUT --dry-run    # print the plan, run nothing
#
# Environment: PYTHON (default: python3; --simulator: <repo>/.venv/bin/python if present),
# GPU_CHECK_TOTAL_S (the whole script's deadline, default 450 s), GPU_CHECK_BUDGET_S
# (--budget of bench.gpu and bench_deformed, default 4). OUT gets at most 6 files (the device
# tool returns 8).
set -u -o pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out=""
mode=gpu
dry=0
for arg in "$@"; do
    case "$arg" in
        --simulator) mode=simulator ;;
        --dry-run) dry=1 ;;
        -h | --help) sed -n '2,29p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "unknown option $arg" >&2; exit 2 ;;
        *) out="$arg" ;;
    esac
done
if [ -z "$out" ]; then
    echo "usage: bench/gpu_check.sh OUTDIR [--simulator] [--dry-run]" >&2
    exit 2
fi
mkdir -p "$out" && out="$(cd "$out" && pwd)"

total="${GPU_CHECK_TOTAL_S:-450}"
budget="${GPU_CHECK_BUDGET_S:-4}"
if [ -n "${PYTHON:-}" ]; then
    py="$PYTHON"
elif [ "$mode" = simulator ] && [ -x "$repo/.venv/bin/python" ]; then
    py="$repo/.venv/bin/python"
else
    py="python3"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/nnft-gpu-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tree="$work/tree"
log="$out/gpu_check.log"
: >"$log"
: >"$work/steps.tsv"
mkdir -p "$work/diffs"
started=$SECONDS
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$tree${PYTHONPATH:+:$PYTHONPATH}"
# The pytest processes run without the simulator (their PTX tests patch the real
# dispatcher); tests/_cuda_env.py starts the targets with NUMBA_ENABLE_CUDASIM=0 or 1.
unset NUMBA_ENABLE_CUDASIM
if [ "$mode" = simulator ]; then
    sim=1 real_gpu=0
    bench_args=(--smoke)
    deformed_args=(--smoke)
else
    sim=0 real_gpu=1
    bench_args=(--budget "$budget")
    deformed_args=(--budget "$budget")
fi

say() { echo "$*" | tee -a "$log"; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$work/steps.tsv"; }

# The seconds step $1 may take: its own limit $2, or what the deadline leaves (0: none).
limit_for() {
    local left=$((total - (SECONDS - started) - 15))
    local lim=$2
    [ "$left" -lt "$lim" ] && lim=$left
    [ "$lim" -lt 10 ] && lim=0
    echo "$lim"
}

# run_step NAME LIMIT CMD...: CMD under timeout, output to stdout and the log.
run_step() {
    local name=$1 lim t0 rc
    lim=$(limit_for "$name" "$2")
    shift 2
    if [ "$lim" -eq 0 ]; then
        say "== $name: SKIPPED, the ${total} s deadline is near"
        record "$name" 125 0
        return
    fi
    say "== $name (timeout ${lim} s): $*"
    if [ "$dry" -eq 1 ]; then
        record "$name" 0 0
        return
    fi
    t0=$SECONDS
    (cd "$tree" && timeout -k 10 "$lim" "$@") 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    record "$name" "$rc" $((SECONDS - t0))
    say "== $name: exit $rc after $((SECONDS - t0)) s"
}

stage() {
    set -e
    mkdir -p "$tree"
    cp -rp "$repo/nnft_fast" "$tree/nnft_fast"
    rm -rf "$tree/nnft_fast/kernels"
    cp -rp "$repo/kernels" "$tree/nnft_fast/kernels" # pyproject: nnft_fast.kernels = kernels/
    cp -rp "$repo/tests" "$tree/tests"
    cp -rp "$repo/bench" "$tree/bench"
    cp -p "$repo/pyproject.toml" "$tree/pyproject.toml"
    if compgen -G "$repo/.whl/*.whl" >/dev/null; then # carried wheels (device/README.md)
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            --target "$work/site" "$repo"/.whl/*.whl
        echo "installed $(ls "$repo"/.whl | wc -l) carried wheels into $work/site"
    fi
    cd "$tree" # not the repository root: its nnft_fast/ lacks kernels/
    "$py" -c "import numpy, scipy, h5py, numba, numba_cuda, nnft_fast.kernels.cpu.rng as r
print('imports ok:', r.__file__)"
}
export -f stage 2>/dev/null || true

say "bench/gpu_check.sh: mode $mode, python $py, repo $repo, out $out, deadline $total s"
[ "$mode" = gpu ] && command -v nvidia-smi >/dev/null &&
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem \
        --format=csv 2>&1 | tee -a "$log"
[ -d "$repo/.whl" ] && export PYTHONPATH="$work/site:$PYTHONPATH"

# 1. setup (in the repository root: the tree does not exist yet)
say "== setup (timeout 90 s): stage $tree"
if [ "$dry" -eq 1 ]; then
    record setup 0 0
else
    t0=$SECONDS
    (export repo tree py work; timeout -k 10 90 bash -c stage) 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    record setup "$rc" $((SECONDS - t0))
    say "== setup: exit $rc after $((SECONDS - t0)) s"
fi

# 2. env
run_step env 90 env NUMBA_ENABLE_CUDASIM=$sim "$py" bench/gpu_check.py env "$out/env.json"

# 3. the CUDA test modules, in parallel (each its own timeout and log)
lim=$(limit_for tests 270)
pids=()
for module in tests/test_cuda.py tests/test_cuda_field.py tests/test_cuda_ntk.py \
    tests/test_cuda_deformation.py tests/test_cuda_rng.py; do
    name=$(basename "$module" .py)
    if [ "$lim" -eq 0 ]; then
        say "== $name: SKIPPED, the ${total} s deadline is near"
        record "$name" 125 0
        continue
    fi
    say "== $name (timeout $lim s, NNFT_CUDA_REAL_GPU=$real_gpu): pytest $module"
    [ "$dry" -eq 1 ] && { record "$name" 0 0; continue; }
    (
        cd "$tree" && t0=$SECONDS &&
            NNFT_CUDA_REAL_GPU=$real_gpu NNFT_CUDA_DIFFS="$work/diffs" timeout -k 10 "$lim" \
                "$py" -m pytest -q -p no:cacheprovider -rA "$module" >"$work/$name.log" 2>&1
        rc=$?
        printf '%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - t0)) >"$work/$name.step"
    ) &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
for module in test_cuda test_cuda_field test_cuda_ntk test_cuda_deformation test_cuda_rng; do
    [ -f "$work/$module.step" ] || continue
    cat "$work/$module.step" >>"$work/steps.tsv"
    {
        echo "---- $module: $(cut -f2 "$work/$module.step" | sed 's/^/exit /')"
        tail -c 20000 "$work/$module.log"
    } | tee -a "$log"
done

# 4. bench.gpu
run_step bench_gpu 200 env NUMBA_ENABLE_CUDASIM=$sim "$py" -m bench.gpu --json "$out/gpu_bench.json" "${bench_args[@]}"

# 5. the deformed field (its JSON in WORK: the summary reports it, OUT keeps six files)
run_step bench_deformed 90 env NUMBA_ENABLE_CUDASIM=$sim "$py" bench/gpu_check.py deformed "$work/deformed.json" "${deformed_args[@]}"

# 6. summary (its own exit code is the same bit sum; computed here too in case it fails)
if [ "$dry" -eq 0 ]; then
    timeout 60 "$py" "$repo/bench/gpu_check.py" summary "$work" "$out" "$mode" 2>&1 |
        tee -a "$log"
    [ -s "$out/summary.txt" ] || say "summary failed (no $out/summary.txt)"
fi
code=0
while IFS=$'\t' read -r name rc _; do
    [ "$rc" = 0 ] && continue
    case "$name" in
        setup) bit=1 ;; env) bit=2 ;; test_cuda) bit=4 ;; test_cuda_field) bit=8 ;;
        test_cuda_ntk) bit=16 ;; test_cuda_deformation) bit=64 ;; test_cuda_rng) bit=256 ;;
        bench_gpu) bit=32 ;; bench_deformed) bit=128 ;; *) bit=0 ;;
    esac
    code=$((code | bit))
done <"$work/steps.tsv"
say "gpu_check: exit $code after $((SECONDS - started)) s ($out)"
exit "$code"
