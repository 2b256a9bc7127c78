#!/usr/bin/env bash
# v17i (docs/gpu.md): the session's final state: all of tests/cuda.rs, then the default and the tensor-parallel kernel
# (VIVA_TENSOR_DECODE=tp) interleaved, twice each.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run $B --label tiny:default
  run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
done
rm -f $OUT/ckpt.log
summary
