#!/usr/bin/env bash
# v17b (docs/gpu.md): the tensor-parallel decode kernel (kernels/tp.cu, VIVA_TENSOR_DECODE=tp) on the device for the
# first time: its test against the multi-kernel path, then its speed on the TinyLlama shape against the default in
# the same call, for several caps on the bulk copies in flight (VIVA_TENSOR_TP_CAP).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp --agree 8
for cap in 1 3 4 0; do run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_TP_CAP=$cap $B --label tiny:tp-cap$cap; done
run $B --label tiny:default
rm -f $OUT/ckpt.log
summary
