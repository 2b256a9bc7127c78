#!/usr/bin/env bash
# v17k (docs/gpu.md): after the launch arguments of both persistent kernels were assembled from shared parts
# (CudaModel::dims_args / cache_args): their tests (the launch check compares every argument's width with the
# kernel's parameters) and one timing each.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny persistent tensor_parallel mismatched
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
run env VIVA_TENSOR_PERSIST=1 $B --fp8-block 128 --label tiny:persistent-b128
rm -f $OUT/ckpt.log
summary
