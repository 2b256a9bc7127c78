#!/usr/bin/env bash
# v14c (docs/gpu.md): the TMA ring per matrix. Both ring kinds are now in one module (gemv_fp8_tc* and
# gemv_fp8_tma*), and VIVA_TENSOR_TC_TMA_MIN=MB gives the TMA ring to the matrices of at least MB MiB (weights and
# scales): 48 -> Llama-2-7B q/k/v (51), gate/up (91), lm_head (133) but not down (45.6); TinyLlama lm_head (66) only.
# 64 -> 7B gate/up and lm_head; 100 -> 7B lm_head. tests/cuda.rs (with the TMA-vs-cp.async test), interleaved
# timings, the previous commit's binary (viva-bench-head, no TMA) as the baseline.
# VIVA_TENSOR_TC_TMA_MIN and the per-matrix TMA kernels were removed after this call (docs/gpu.md v14c); the code
# is commit a0aa5a9.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
H="$C/viva-bench-head $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $H --label tiny:head
run env $B --label tiny:default
run env VIVA_TENSOR_TC_TMA_MIN=48 $B --label tiny:tma48
run env $B --label tiny:default
run env VIVA_TENSOR_TC_TMA_MIN=48 $B --label tiny:tma48
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
run7 env VIVA_TENSOR_TC_TMA_MIN=48 $B7 --label llama7b:tma48
run7 env VIVA_TENSOR_TC_TMA_MIN=64 $B7 --label llama7b:tma64
run7 env VIVA_TENSOR_TC_TMA_MIN=100 $B7 --label llama7b:tma100
run7 env $B7 --label llama7b:default
run7 env VIVA_TENSOR_TC_TMA_MIN=48 $B7 --label llama7b:tma48
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
