#!/usr/bin/env bash
# A/B against a base binary (.carry/viva-bench-base, built from another commit) in one call. As run for v9f
# (docs/gpu.md, v9): the tensor-core GEMV with 16-row tiles (weights as the mma A operand, x' in one
# B column: a quarter of the x' shared-memory reads and half the mmas of the 8-row form) against the 8-row form
# of the previous commit (.carry/viva-bench-base) in the same call, ring / blocks-per-SM variants, the
# math-free probe; TinyLlama and Llama-2-7B shapes with the torch-graph bf16 peers. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
ckpts_bg
cuda_tests
wait_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8"
B0="$C/viva-bench-base $CK --backend cuda --json $RES --weights fp8"
Q="--prefill-len 0 --api-steps 0"
echo "== decode, TinyLlama shape, fp8 b128"
run $B0 --label row8-3x6 $Q
VIVA_TENSOR_TC_RING=8 run $B0 --label row8-3x8 $Q
run $B --label row16-3x4 $Q --agree 24 --profile
VIVA_TENSOR_TC_RING=3 run $B --label row16-3x3 $Q
VIVA_TENSOR_TC_RING=5 run $B --label row16-3x5 $Q
VIVA_TENSOR_TC_RING=5 VIVA_TENSOR_TC_BPS=2 run $B --label row16-2x5 $Q
VIVA_TENSOR_TC_RING=3 VIVA_TENSOR_TC_BPS=4 run $B --label row16-4x3 $Q
VIVA_TENSOR_TC_FLAGS=2 run $B --label probe:row16-nomath $Q
VIVA_TENSOR_TC_RING=8 run $B0 --label row8-3x8-r2 $Q
run $B --label row16-3x4-r2 $Q
run $B --label row16-b64 --fp8-block 64 $Q
echo "== torch-graph bf16 peer"
timeout 200 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -1
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q"
B70="$C/viva-bench-base $CK7 --backend cuda --json $RES --weights fp8 --new 128 $Q"
VIVA_TENSOR_TC_RING=8 run7 $B70 --label llama7b-row8-3x8
run7 $B7 --label llama7b-row16-3x4 --profile
VIVA_TENSOR_TC_RING=5 VIVA_TENSOR_TC_BPS=2 run7 $B7 --label llama7b-row16-2x5
VIVA_TENSOR_GEMV=cuda-core run7 $B7 --label llama7b-cudacore-b64-v8 --fp8-block 64
timeout 200 python3 $C/torch_baseline.py --shape llama-2-7b --variants torch-graph:bf16 --new-tokens 128 --json $RES 2>&1 | grep -v Warning | tail -1
summary
