#!/usr/bin/env bash
# v17g (docs/gpu.md): fewer instructions a GEMV slot (ring position counted, x' in fragment order: one 16-byte load a pair,
# no masks on B's unused columns). Test, speed against the default, profile.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp-profile --profile
rm -f $OUT/ckpt.log
summary
