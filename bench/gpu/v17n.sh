#!/usr/bin/env bash
# v17n (docs/gpu.md): tp.cu's block reductions as two helpers (tp_block_sum / tp_block_max): the tensor-parallel test,
# then the default and the tensor-parallel kernel once each.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
rm -f $OUT/ckpt.log
summary
