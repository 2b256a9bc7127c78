#!/usr/bin/env bash
# v17f (docs/gpu.md): v17e found the GEMV phases bound by the consumers' latency chains (the ring full, the
# producer waiting ~39 of ~48 us a layer); the GEMV inner loops now issue all loads before the math, with no branch
# between the mma. Test, speed against the default, profile.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp-profile --profile
rm -f $OUT/ckpt.log
summary
