#!/usr/bin/env bash
# The code it ran is commit 241c5fe (reverted by the next commit: slower).
# v16c (docs/gpu.md): the tensor-core attention requests the layer's gate/up weights (two kernels ahead) into L2
# (`VIVA_TENSOR_ATTN_PF=AT[:MB]`: AT 1 before its PDL wait, 2 after it, 3 once q is staged, 4 at its end; MB the
# first MiB only), so that gate/up streams from L2 what device memory had time for during attention and o (the
# timelines show weight traffic well under the bandwidth there). Same binary, TinyLlama shape: tests/cuda.rs
# (default, then the attention tests with the prefetch on), interleaved timings, timelines of the default and AT 3.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny
TEST_ENV=VIVA_TENSOR_ATTN_PF=3 TEST_LOG=-pf3 cuda_tests attention
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run env $B --label tiny:default
  for at in 1 2 3 4; do run env VIVA_TENSOR_ATTN_PF=$at $B --label tiny:pf$at; done
  run env VIVA_TENSOR_ATTN_PF=3:12 $B --label tiny:pf3-12MB
done
run env $B --label tl:default --timeline 20
run env VIVA_TENSOR_ATTN_PF=3 $B --label tl:pf3 --timeline 20
rm -f $OUT/ckpt.log
summary
