# Sourced by the device scripts in this folder: inputs carried in $CARRY (default .carry), outputs under $OUT,
# the device's CUDA libraries on the loader path, multicast kept off (KINDS.md), a fresh results.jsonl.
set -u
C=${CARRY:-.carry}
OUT=${OUT:-/tmp/viva-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
RES="$OUT/results.jsonl"; : > "$RES"
CK=/tmp/tinyllama
CK7=/tmp/llama7b
# run / run7: one viva-bench (or other) command with a 120 s / 240 s limit, its output kept in bench.log.
run() { echo "-- $*"; timeout 120 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
run7() { echo "-- $*"; timeout 240 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
# ckpts_bg [tiny]: writes the random TinyLlama-shape and (unless `tiny`) Llama-2-7B-shape checkpoints in the
# background (CKPID); wait_tiny: waits for the first one.
ckpts_bg() {
  ( [ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1
    [ "${1:-}" = tiny ] || [ -f $CK7/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b > "$OUT/ckpt7.log" 2>&1 ) &
  CKPID=$!
}
wait_tiny() { while [ ! -f $CK/config.json ]; do sleep 2; kill -0 $CKPID 2>/dev/null || break; done; sleep 5; }
# begin [TEST-FILTER...]: the opening of an A/B call: the device line, both checkpoints written in the background,
# tests/cuda.rs (cuda_tests, unless NOTESTS=1), then the wait for the TinyLlama checkpoint. begin_tiny: the same for a
# call on the TinyLlama shape only (no Llama-2-7B checkpoint written).
begin() { begin_shapes all "$@"; }
begin_tiny() { begin_shapes tiny "$@"; }
begin_shapes() {
  local shapes=$1
  shift
  echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
  ckpts_bg "$shapes"
  [ "${NOTESTS:-0}" = 1 ] || cuda_tests "$@"
  wait_tiny
}
# cuda_tests [TEST-FILTER...]: tests/cuda.rs on the device, the lines that carry results; TEST_ENV adds environment
# (e.g. VIVA_TENSOR_NVRTC_DEFINES=-DNAME=1 for an experiment's kernels), TEST_LOG a suffix to the log's name.
cuda_tests() {
  echo "== correctness: tests/cuda.rs${TEST_ENV:+ with $TEST_ENV}"
  env ${TEST_ENV:-} VIVA_TENSOR_FIXTURES=$C/fixtures timeout 300 $C/cuda-tests --test-threads=1 --nocapture "$@" 2>&1 \
    | tee "$OUT/cuda-tests${TEST_LOG:-}.log" | grep -E "SKIPPED|vs |agreement|test result|panicked|FAILED|free device|not used"
}
# summary: the table of $RES (viva-bench rows, torch_baseline.py rows, BEAM rows), printed last in every call.
summary() {
echo "== summary"
python3 - "$RES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'variant':26s} {'tok/s':>9s} {'ms/tok':>8s} {'GB/tok':>7s} {'GB/s':>6s} {'fwd ms/tok':>10s} {'prefill ms':>10s}  agreement")
for r in rows:
    if "beam" in r:
        print(f"{'beam:' + r['beam']:26s} {r['tok_s']:9.1f} {r['ms_tok']:8.3f} {'':7s} {'':6s} {'':10s} {r['prefill_ms']:7.2f}@512  (generate/3 through the BEAM)")
    elif "label" in r:
        a = r.get("agree"); ag = f"top1 {a['top1']:.3f} rel {a['rel_mean']:.2e}" if a else ""
        pf = f"{r['prefill_ms']:.2f}@{r['prefill_len']}" if r.get("prefill_ms") else "-"
        print(f"{r['label']:26s} {r['tok_s']:9.1f} {r['ms_tok']:8.3f} {r['weight_gb']:7.3f} {r['gb_s']:6.0f} {r['api_ms_tok']:10.3f} {pf:>10s}  {ag}")
    else:
        print(f"{'torch:' + r['variant'] + ('' if r.get('shape', 'tinyllama-1.1b') == 'tinyllama-1.1b' else '@' + r['shape']):26s} {r['tok_s']:9.1f} {r['ms_tok']:8.3f} {r['weight_gb']:7.3f} {r['tb_s']*1e3:6.0f}")
PY
}
