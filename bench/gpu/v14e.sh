#!/usr/bin/env bash
# v14e, v14f (docs/gpu.md): one FP8 scale per row (VIVA_TENSOR_FP8_BLOCK=row: no scales in the GEMV's ring, the
# block's row scales staged once and applied in the epilogue) against blocks of 128, same binary: tests/cuda.rs
# (with the per-row-vs-block-128-vs-CPU test and the fixtures' agreement at row), interleaved timings on both
# shapes, and agreement with the CPU f32 path on the random TinyLlama-shape checkpoint for both. Inputs as run.sh.
# Call e ran it with a bug in the per-row silu epilogue and the per-row path as runtime branches of every GEMV
# kernel; call f with the fix and the gemv_fp8_tcr* kernels.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run env $B --fp8-block 128 --label tiny:b128
run env $B --fp8-block row --label tiny:row
run env $B --fp8-block 128 --label tiny:b128
run env $B --fp8-block row --label tiny:row
run env $B --fp8-block 128 --new 32 --agree 32 --label tiny:b128-agree
run env $B --fp8-block row --new 32 --agree 32 --label tiny:row-agree
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --fp8-block 128 --label llama7b:b128
run7 env $B7 --fp8-block row --label llama7b:row
run7 env $B7 --fp8-block 128 --label llama7b:b128
run7 env $B7 --fp8-block row --label llama7b:row
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
