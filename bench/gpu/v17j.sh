#!/usr/bin/env bash
# v17j (docs/gpu.md): after the review's refactors (the persistent kernels' shared argmax finish in common.cuh, the
# random-checkpoint helpers of tests/cuda.rs): all of tests/cuda.rs, the persistent kernel, the tensor-parallel kernel
# and the default once each.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
run env VIVA_TENSOR_PERSIST=1 $B --fp8-block 128 --label tiny:persistent-b128
rm -f $OUT/ckpt.log
summary
