#!/usr/bin/env bash
# v17h (docs/gpu.md): x' staging in one pass plus the write (a bound on max |x'| from max |w|, max |x| and the norm
# statistic), the first K/V chunk's requests without a division each; the cap on copies in flight 2 / 3 / 4 now that
# v17g's producer waits on it ~6 us a layer. Test, speeds, profile at the best-looking cap.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
for cap in 2 3 4 6; do run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_TP_CAP=$cap $B --label tiny:tp-cap$cap; done
run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_TP_CAP=3 $B --label tiny:tp-cap3-profile --profile
rm -f $OUT/ckpt.log
summary
