#!/usr/bin/env bash
# v17m (docs/gpu.md): after the review's simplifications of the tensor-parallel kernel (one templated mbarrier wait,
# the x all-gather copy once, no redundant zeroing or prefetch) and the persistent kernels' shared shared-memory
# opt-in: all of tests/cuda.rs, then the default, the tensor-parallel and the persistent kernel once each.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
run env VIVA_TENSOR_PERSIST=1 $B --fp8-block 128 --label tiny:persistent-b128
rm -f $OUT/ckpt.log
summary
