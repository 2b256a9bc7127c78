#!/usr/bin/env bash
# v17c (docs/gpu.md): the tensor-parallel kernel's test again (the race on x at the step's start fixed), its
# per-phase profile (viva-bench --profile: every block's %globaltimer stamps), and its speed against the default.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp --profile
run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_TP_CAP=0 $B --label tiny:tp-cap0
rm -f $OUT/ckpt.log
summary
