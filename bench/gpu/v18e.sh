#!/usr/bin/env bash
# v18e (docs/gpu.md): on v18d's machine (still warm), why the halved clusters read 1470-1495: the new default, the
# clusters fixed at 4 (`VIVA_TENSOR_ATTN_CLUSTER=4`, v18b-c's variant) and one size (8), three interleaved rounds.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2 3; do
  run $B --label tiny:halves
  run env VIVA_TENSOR_ATTN_CLUSTER=4 $B --label tiny:fixed-4
  run env VIVA_TENSOR_ATTN_SHORT=0 $B --label tiny:one-size
done
rm -f $OUT/ckpt.log
summary
