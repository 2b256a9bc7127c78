#!/usr/bin/env bash
# The code it ran is commit e3e05d2 (its persist.cu defines reverted by the next commit: no gain worth keeping).
# v16a (docs/gpu.md): does a cap on the bytes in flight shorten the persistent kernel's grid barriers and x'
# loads under load? The producer of kernels/persist.cu keeps at most N tile copies in flight (-DPK_INFLIGHT=N
# through VIVA_TENSOR_NVRTC_DEFINES; landed tiles still fill the ring across the barriers), and -DPK_LIGHT_BAR=1
# drops the full fences around the barrier's release add / acquire poll. Persistent kernel at FP8 blocks of 128
# (it refuses per-row scales) with per-phase profiles, against the multi-kernel default (per-row) and the
# multi-kernel path at blocks of 128, same binary, TinyLlama shape.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
D=VIVA_TENSOR_NVRTC_DEFINES
TEST_ENV="$D=-DPK_INFLIGHT=2" TEST_LOG=-cap2 begin_tiny persistent
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
P="VIVA_TENSOR_PERSIST=1 VIVA_TENSOR_FP8_BLOCK=128"
run env $B --label tiny:default
run env VIVA_TENSOR_FP8_BLOCK=128 $B --label tiny:b128
run env $P $B --label persist:nocap --profile
for n in 1 2 3 4 6; do
  run env $P "$D=-DPK_INFLIGHT=$n" $B --label persist:cap$n --profile
done
run env $P "$D=-DPK_LIGHT_BAR=1" $B --label persist:lightbar --profile
run env $P "$D=-DPK_INFLIGHT=2 -DPK_LIGHT_BAR=1" $B --label persist:cap2+lightbar --profile
run env $P "$D=-DPK_INFLIGHT=4 -DPK_LIGHT_BAR=1" $B --label persist:cap4+lightbar --profile
run env $P VIVA_TENSOR_PERSIST_TILE=8192 "$D=-DPK_INFLIGHT=4" $B --label persist:t8k-cap4 --profile
run env $B --label tiny:default-2
rm -f $OUT/ckpt.log
summary
