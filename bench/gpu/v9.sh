#!/usr/bin/env bash
# v9 call (docs/gpu.md): the tensor-core FP8 GEMV with per-warp cp.async rings (kernels/gemv.cu, gemv_tc_body)
# against the v5 CUDA-core GEMV (VIVA_TENSOR_GEMV=v5), same card, one call: correctness (tests/cuda.rs), decode
# timings for ring / blocks-per-SM variants on the TinyLlama and Llama-2-7B shapes, the torch-graph bf16 peer.
# Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
which nsys ncu 2>/dev/null
( [ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1
  CK7=/tmp/llama7b; [ "${LLAMA7B:-1}" = 1 ] && [ ! -f $CK7/config.json ] && python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b > "$OUT/ckpt7.log" 2>&1 ) &
CKPID=$!
echo "== correctness: tests/cuda.rs"
VIVA_TENSOR_FIXTURES=$C/fixtures timeout 300 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
  | tee "$OUT/cuda-tests.log" | grep -E "SKIPPED|vs |agreement|test result|panicked|FAILED|free device|not used"
while [ ! -f $CK/config.json ]; do sleep 2; kill -0 $CKPID 2>/dev/null || break; done; sleep 5
B="$C/viva-bench $CK --backend cuda --json $RES"
run() { echo "-- $*"; timeout 120 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
run7() { echo "-- $*"; timeout 240 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
echo "== decode: v9 tensor-core GEMV vs v5, interleaved, with per-kernel profiles"
VIVA_TENSOR_GEMV=v5 run $B --weights fp8 --label v5-fp8-b64 --prefill-len 0 --api-steps 0 --profile
run $B --weights fp8 --label v9-fp8-b64-ring8 --prefill-len 0 --agree 24 --profile
VIVA_TENSOR_TC_RING=4 run $B --weights fp8 --label v9-ring4 --prefill-len 0 --api-steps 0
VIVA_TENSOR_TC_RING=12 run $B --weights fp8 --label v9-ring12 --prefill-len 0 --api-steps 0
VIVA_TENSOR_TC_BPS=2 run $B --weights fp8 --label v9-ring8-bps2 --prefill-len 0 --api-steps 0
VIVA_TENSOR_TC_BPS=2 VIVA_TENSOR_TC_RING=4 run $B --weights fp8 --label v9-ring4-bps2 --prefill-len 0 --api-steps 0
run $B --weights fp8 --fp8-block 128 --label v9-fp8-b128 --prefill-len 0 --api-steps 0
VIVA_TENSOR_GEMV=v5 run $B --weights fp8 --label v5-fp8-b64-r2 --prefill-len 0 --api-steps 0
run $B --weights fp8 --label v9-fp8-b64-r2 --prefill-len 512
echo "== torch-graph bf16 peer"
timeout 200 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -1
if [ "${LLAMA7B:-1}" = 1 ]; then
  echo "== Llama-2-7B shape"; CK7=/tmp/llama7b
  wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
  B7="$C/viva-bench $CK7 --backend cuda --json $RES --weights fp8 --new 128 --prefill-len 0 --api-steps 0"
  VIVA_TENSOR_GEMV=v5 run7 $B7 --label llama7b-v5-fp8-b64
  run7 $B7 --label llama7b-v9-fp8-b64 --profile
  VIVA_TENSOR_TC_RING=12 run7 $B7 --label llama7b-v9-ring12
fi
if command -v ncu >/dev/null && [ "${NCU:-1}" = 1 ]; then
  echo "== ncu: isolated v9 GEMVs (kernel replay, no graph)"
  VIVA_TENSOR_CUDA_GRAPH=0 timeout 150 ncu -k regex:gemv_fp8_tc -c 12 --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size \
    $C/viva-bench $CK --backend cuda --weights fp8 --new 4 --prompt-len 8 --prefill-len 0 --api-steps 0 2>&1 | grep -E "gemv_fp8_tc|duration|dram__|grid_size" | head -60
fi
summary
