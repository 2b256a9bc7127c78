#!/usr/bin/env bash
# v9d call (docs/gpu.md, v9): the tensor-core GEMV (now the FP8 b64/b128 default) over blocks per SM x ring slots,
# against the CUDA-core GEMV (VIVA_TENSOR_GEMV=cuda-core) and the previous commit's binary (.carry/viva-bench-base)
# in the same call; TinyLlama and Llama-2-7B shapes; the torch-graph bf16 peer. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
( [ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1
  CK7=/tmp/llama7b; [ "${LLAMA7B:-1}" = 1 ] && [ ! -f $CK7/config.json ] && python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b > "$OUT/ckpt7.log" 2>&1 ) &
CKPID=$!
echo "== correctness: tests/cuda.rs"
VIVA_TENSOR_FIXTURES=$C/fixtures timeout 300 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
  | tee "$OUT/cuda-tests.log" | grep -E "SKIPPED|vs |agreement|test result|panicked|FAILED|free device|not used"
while [ ! -f $CK/config.json ]; do sleep 2; kill -0 $CKPID 2>/dev/null || break; done; sleep 5
run() { echo "-- $*"; timeout 120 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
run7() { echo "-- $*"; timeout 240 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8"
B0="$C/viva-bench-base $CK --backend cuda --json $RES --weights fp8"
Q="--prefill-len 0 --api-steps 0"
tc() { local bps=$1 ring=$2; shift 2; VIVA_TENSOR_TC_BPS=$bps VIVA_TENSOR_TC_RING=$ring run $B "$@" $Q; }
echo "== decode, TinyLlama shape"
run $B0 --label base-b64 $Q
VIVA_TENSOR_GEMV=cuda-core run $B --label cudacore-b64 $Q
tc 3 4 --label tc-b64-bps3-r4 --agree 24 --profile
tc 4 4 --label tc-b64-bps4-r4
tc 4 3 --label tc-b64-bps4-r3
tc 3 6 --label tc-b64-bps3-r6
tc 2 6 --label tc-b64-bps2-r6
tc 2 8 --label tc-b64-bps2-r8
tc 1 8 --label tc-b64-bps1-r8
run $B0 --label base-b128 --fp8-block 128 $Q
tc 3 4 --label tc-b128-bps3-r4 --fp8-block 128
tc 4 4 --label tc-b128-bps4-r4 --fp8-block 128
run $B0 --label base-b64-r2 $Q
tc 3 4 --label tc-b64-bps3-r4-r2
echo "== torch-graph bf16 peer"
timeout 200 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -1
if [ "${LLAMA7B:-1}" = 1 ]; then
  echo "== Llama-2-7B shape"; CK7=/tmp/llama7b
  wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
  B7="$C/viva-bench $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q"
  run7 $C/viva-bench-base $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q --label llama7b-base-b64
  VIVA_TENSOR_TC_BPS=3 VIVA_TENSOR_TC_RING=4 run7 $B7 --label llama7b-tc-bps3-r4 --profile
  VIVA_TENSOR_TC_BPS=4 VIVA_TENSOR_TC_RING=4 run7 $B7 --label llama7b-tc-bps4-r4
  VIVA_TENSOR_TC_BPS=2 VIVA_TENSOR_TC_RING=8 run7 $B7 --label llama7b-tc-bps2-r8
  VIVA_TENSOR_TC_BPS=3 VIVA_TENSOR_TC_RING=4 run7 $B7 --label llama7b-tc-b128-bps3-r4 --fp8-block 128
fi
summary
