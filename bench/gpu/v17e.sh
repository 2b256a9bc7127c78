#!/usr/bin/env bash
# v17e (docs/gpu.md): where the tensor-parallel kernel's GEMV phases wait: its profile now also sums thread 0's waits
# for ring slots per GEMV and the producer's waits (ring full / copies in flight), at the default cap of 2 copies
# in flight and with no cap.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp --profile
run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_TP_CAP=0 $B --label tiny:tp-cap0 --profile
rm -f $OUT/ckpt.log
summary
