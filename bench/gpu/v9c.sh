#!/usr/bin/env bash
# v9c call (docs/gpu.md, v9): in the decode graph, the GEMV with two chunks in flight per lane
# (VIVA_TENSOR_GEMV_DEPTH=2) and the attention kernel's early KV-tile loads / merged combine loads, against the
# previous commit's binary (.carry/viva-bench-base) in the same call; the opt-in tensor-core GEMV with more
# blocks per SM; fp8 block 128; the Llama-2-7B shape; the torch-graph bf16 peer. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
( [ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1
  CK7=/tmp/llama7b; [ "${LLAMA7B:-1}" = 1 ] && [ ! -f $CK7/config.json ] && python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b > "$OUT/ckpt7.log" 2>&1 ) &
CKPID=$!
echo "== correctness: tests/cuda.rs"
VIVA_TENSOR_FIXTURES=$C/fixtures timeout 300 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
  | tee "$OUT/cuda-tests.log" | grep -E "SKIPPED|vs |agreement|identical|test result|panicked|FAILED|free device|not used"
while [ ! -f $CK/config.json ]; do sleep 2; kill -0 $CKPID 2>/dev/null || break; done; sleep 5
run() { echo "-- $*"; timeout 120 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
run7() { echo "-- $*"; timeout 240 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8"
B0="$C/viva-bench-base $CK --backend cuda --json $RES --weights fp8"
Q="--prefill-len 0 --api-steps 0"
echo "== decode, TinyLlama shape, interleaved"
run $B0 --label base-b64 $Q --profile
run $B --label new-b64 --prefill-len 512 --agree 24 --profile
VIVA_TENSOR_GEMV_DEPTH=1 run $B --label new-b64-depth1 $Q
run $B0 --label base-b128 --fp8-block 128 $Q
run $B --label new-b128 --fp8-block 128 $Q --agree 24
VIVA_TENSOR_GEMV=tc VIVA_TENSOR_TC_BPS=3 VIVA_TENSOR_TC_RING=4 run $B --label tc-b64-bps3-ring4 $Q
VIVA_TENSOR_GEMV=tc VIVA_TENSOR_TC_BPS=2 VIVA_TENSOR_TC_RING=4 run $B --label tc-b128-bps2-ring4 --fp8-block 128 $Q
run $B0 --label base-b64-r2 $Q
run $B --label new-b64-r2 $Q
run $B --label new-b64-long --prompt-len 1500 --new 256 $Q
run $B0 --label base-b64-long --prompt-len 1500 --new 256 $Q
echo "== torch-graph bf16 peer"
timeout 200 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -1
if [ "${LLAMA7B:-1}" = 1 ]; then
  echo "== Llama-2-7B shape"; CK7=/tmp/llama7b
  wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
  B7="$C/viva-bench $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q"
  B70="$C/viva-bench-base $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q"
  run7 $B70 --label llama7b-base-b64
  run7 $B7 --label llama7b-new-b64 --profile
  run7 $B7 --label llama7b-new-b128 --fp8-block 128
fi
summary
