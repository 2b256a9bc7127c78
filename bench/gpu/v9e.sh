#!/usr/bin/env bash
# v9e call (docs/gpu.md, v9): launch shapes of the tensor-core GEMV per matrix size (small / big, VIVA_TENSOR_TC_*)
# and chained vs independent mmas, against the previous commit's binary (.carry/viva-bench-base), TinyLlama and
# Llama-2-7B shapes, the torch-graph bf16 peer. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
( [ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1
  CK7=/tmp/llama7b; [ ! -f $CK7/config.json ] && python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b > "$OUT/ckpt7.log" 2>&1 ) &
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
echo "== decode, TinyLlama shape"
run $B0 --label base-b64 $Q
run $B --label def-b64 $Q --agree 24 --profile
VIVA_TENSOR_TC_BIG_MB=100000 run $B --label chain-all-3x4 $Q
VIVA_TENSOR_TC_BIG_MB=100000 VIVA_TENSOR_TC_RING=6 run $B --label chain-all-3x6 $Q
VIVA_TENSOR_TC_CHAIN=0 VIVA_TENSOR_TC_BIG_MB=100000 VIVA_TENSOR_TC_RING=6 run $B --label indep-all-3x6 $Q
VIVA_TENSOR_TC_BIG_MB=20 run $B --label chain-3x4-big20-2x8 $Q
VIVA_TENSOR_TC_BIG_MB=20 VIVA_TENSOR_TC_BIG_BPS=4 VIVA_TENSOR_TC_BIG_RING=4 run $B --label chain-3x4-big20-4x4 $Q
VIVA_TENSOR_TC_BPS=4 VIVA_TENSOR_TC_RING=3 run $B --label chain-4x3-big32-2x8 $Q
run $B0 --label base-b128 --fp8-block 128 $Q
run $B --label def-b128 --fp8-block 128 $Q
run $B0 --label base-b64-r2 $Q
run $B --label def-b64-r2 $Q
echo "== torch-graph bf16 peer"
timeout 200 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -1
echo "== Llama-2-7B shape"; CK7=/tmp/llama7b
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q"
run7 $C/viva-bench-base $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q --label llama7b-base-b64
run7 $B7 --label llama7b-def
VIVA_TENSOR_TC_BIG_MB=1 run7 $B7 --label llama7b-chain-all-2x8
VIVA_TENSOR_TC_BIG_MB=1 VIVA_TENSOR_TC_BIG_BPS=4 VIVA_TENSOR_TC_BIG_RING=4 run7 $B7 --label llama7b-chain-all-4x4
VIVA_TENSOR_TC_CHAIN=0 VIVA_TENSOR_TC_BIG_MB=1 run7 $B7 --label llama7b-indep-all-2x8
VIVA_TENSOR_TC_BIG_MB=1 run7 $B7 --label llama7b-chain-all-2x8-b128 --fp8-block 128
summary
