#!/usr/bin/env bash
# The code it ran is commit 9248ab6 (reverted by the next commit: slower).
# v15f (docs/gpu.md): v15e's streamed down with its polls backing off (relaxed loads, 200 ns sleeps, then one
# acquire per chunk) and 4 ring slots before them as elsewhere, against the grid wait, same binary: the streamed
# test of tests/cuda.rs, interleaved timings on the TinyLlama shape, a timeline of each.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_streamed
SD=VIVA_TENSOR_STREAM_DOWN=1
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run env $B --label tiny:wait
  run env $SD $B --label tiny:stream
done
run env $SD $B --new 16 --timeline 20 --label tl:stream
rm -f $OUT/ckpt.log
summary
