#!/usr/bin/env bash
# v17l (docs/gpu.md): the attention chain's loops without a division per element (K/V staging, q/k/v reassembly, the
# attention outputs' copy). Test, speed against the default (interleaved), profile. Slower; the change was reverted before
# any commit (docs/gpu.md v17, row l, says what it was).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run $B --label tiny:default
  run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
done
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp-profile --profile
rm -f $OUT/ckpt.log
summary
