#!/usr/bin/env bash
# v18b (docs/gpu.md): the tensor-core decode attention's shape: blocks per cluster (`VIVA_TENSOR_ATTN_CLUSTER`, default
# 8 on the TinyLlama shape), warps per block (`VIVA_TENSOR_ATTN_WARPS`, default 4) and ring slots
# (`VIVA_TENSOR_ATTN_SLOTS`), interleaved with the default in one binary; the attention and fixture tests with clusters of
# 1 (8 warps; 16 warps on the attention test's first checkpoint); timelines; a 1536-token context.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin_tiny
TEST_ENV="VIVA_TENSOR_ATTN_WARPS=8 VIVA_TENSOR_ATTN_CLUSTER=1" TEST_LOG=-w8c1 cuda_tests fp8_tc_attention fp8_agreement
# 16 warps fit one ring slot only: the test's slots-2 case then reports the kernel unused and ends the test.
TEST_ENV="VIVA_TENSOR_ATTN_WARPS=16 VIVA_TENSOR_ATTN_CLUSTER=1" TEST_LOG=-w16c1 cuda_tests fp8_tc_attention
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
v() { run env VIVA_TENSOR_ATTN_CLUSTER=$1 VIVA_TENSOR_ATTN_WARPS=$2 VIVA_TENSOR_ATTN_SLOTS=$3 $B --label tiny:c$1w$2s$3 "${@:4}"; }
for i in 1 2; do
  run $B --label tiny:default
  v 1 4 2; v 2 4 2; v 4 4 2; v 1 8 2; v 1 16 1; v 2 8 2; v 2 16 1
done
run $B --label tiny:timeline-default --timeline 32
v 1 16 1 --timeline 32
run $B --label tiny:long-default --prompt-len 1536
v 1 16 1 --prompt-len 1536
v 2 16 1 --prompt-len 1536
rm -f $OUT/ckpt.log
summary
