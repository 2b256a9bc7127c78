#!/usr/bin/env bash
# v18c (docs/gpu.md): v18b's best attention shape on the TinyLlama shape, clusters of 4 blocks instead of 8
# (`VIVA_TENSOR_ATTN_CLUSTER=4`), against the default in three interleaved rounds, with one ring slot too, at a
# 1536-token context, and its timeline.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
v() { run env VIVA_TENSOR_ATTN_CLUSTER=$1 VIVA_TENSOR_ATTN_SLOTS=$2 $B --label tiny:c$1s$2 "${@:3}"; }
for i in 1 2 3; do
  run $B --label tiny:default
  v 4 2; v 4 1
done
for i in 1 2; do
  run $B --label tiny:long-default --prompt-len 1536
  v 4 2 --prompt-len 1536
done
v 4 2 --timeline 32
rm -f $OUT/ckpt.log
summary
