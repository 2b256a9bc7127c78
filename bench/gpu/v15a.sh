#!/usr/bin/env bash
# The code it ran is commit e93e4b9 (reverted by the next commit: slower).
# v15a (docs/gpu.md): the o projection folded into the tensor-core decode attention (VIVA_TENSOR_ATTN_O=1; o's
# copies issued once q is staged, or at the start with VIVA_TENSOR_ATTN_O_FLAGS=1: call a ran that as
# VIVA_TENSOR_ATTN_O_EARLY=1, before the flags) against attention and o as two kernels, same binary: tests/cuda.rs
# (with the fold-vs-two-kernels test), interleaved timings on the TinyLlama shape (the Llama-2-7B shape's share of o
# does not fit shared memory: no fold there), agreement with the CPU f32 path, and the timeline of both. Inputs as
# run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2; do
  run env VIVA_TENSOR_ATTN_O=0 $B --label tiny:two
  run env VIVA_TENSOR_ATTN_O=1 $B --label tiny:fold
  run env VIVA_TENSOR_ATTN_O=1 VIVA_TENSOR_ATTN_O_FLAGS=1 $B --label tiny:fold-early
done
run env VIVA_TENSOR_ATTN_O=0 $B --new 32 --agree 32 --label tiny:two-agree
run env VIVA_TENSOR_ATTN_O=1 $B --new 32 --agree 32 --label tiny:fold-agree
run env VIVA_TENSOR_ATTN_O=0 $B --new 16 --timeline 20 --label tl:two
run env VIVA_TENSOR_ATTN_O=1 $B --new 16 --timeline 20 --label tl:fold
rm -f $OUT/ckpt.log
summary
