#!/usr/bin/env bash
# v14b (docs/gpu.md): the fused MLP (gate/up, silu and the transposed down projection in one kernel per layer,
# reduced into the residual) against the two GEMVs of v13 (VIVA_TENSOR_MLP=unfused), same binary:
# tests/cuda.rs (with the fused-vs-unfused-vs-CPU test), interleaved timings on both shapes, a TinyLlama
# timeline of the fused step. Inputs as run.sh.
# VIVA_TENSOR_MLP and the fused kernel were removed after this call (docs/gpu.md v14b); the code is commit 567dc73.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --label tiny:fused
run env VIVA_TENSOR_MLP=unfused $B --label tiny:unfused
run env $B --label tiny:fused
run env VIVA_TENSOR_MLP=unfused $B --label tiny:unfused
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-tiny.bin run $B --label tiny:fused-timeline --timeline 8 && gzip -f $OUT/tl-tiny.bin
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:fused
run7 env VIVA_TENSOR_MLP=unfused $B7 --label llama7b:unfused
run7 env $B7 --label llama7b:fused
run7 env VIVA_TENSOR_MLP=unfused $B7 --label llama7b:unfused
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
