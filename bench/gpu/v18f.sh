#!/usr/bin/env bash
# Ran at commit 210b5c0 (the generalised rule; its code was reverted two commits later; script and logs kept).
# v18f (docs/gpu.md): the attention's cluster size as the fewest blocks that give every warp one 32-position tile,
# from 1 to 16 (non-portable) on the TinyLlama shape (candidate default), against a floor of 4
# (`VIVA_TENSOR_ATTN_MIN_CLUSTER=4`) and against v18d's rule (4 then 8: `_MIN_CLUSTER=4 _MAX_CLUSTER=8`), at
# positions 16-272, 128-384 (twice), 1024-1280 and 1536-1792; the attention test (sizes 4, 8 and 16) and the fixtures'
# agreement (1 and 2) first.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin_tiny
cuda_tests fp8_tc_attention fp8_agreement
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for p in 128 16 128 1024 1536; do
  run $B --label tiny:fewest@$p --prompt-len $p
  run env VIVA_TENSOR_ATTN_MIN_CLUSTER=4 $B --label tiny:floor4@$p --prompt-len $p
  run env VIVA_TENSOR_ATTN_MIN_CLUSTER=4 VIVA_TENSOR_ATTN_MAX_CLUSTER=8 $B --label tiny:v18d@$p --prompt-len $p
done
rm -f $OUT/ckpt.log
summary
