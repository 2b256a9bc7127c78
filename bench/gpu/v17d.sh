#!/usr/bin/env bash
# v17d (docs/gpu.md): the tensor-parallel kernel after the v17c profile: its test, its speed with the ring's
# mbarrier waits at CTA scope (default) and at cluster scope (-DTP_RING_CLUSTER=1, as in v17c), without the GEMV
# math (-DTP_NOMATH=1, wrong results: the chain and the stream alone), and its per-phase profile. (-DTP_RING_CLUSTER was
# removed after this call: the ring waits are at CTA scope only.)
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny fp8_tensor_parallel
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
run $B --label tiny:default
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp
run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_NVRTC_DEFINES=-DTP_RING_CLUSTER=1 $B --label tiny:tp-ring-cluster
run env VIVA_TENSOR_DECODE=tp VIVA_TENSOR_NVRTC_DEFINES=-DTP_NOMATH=1 $B --label probe:tp-nomath
run env VIVA_TENSOR_DECODE=tp $B --label tiny:tp-profile --profile
rm -f $OUT/ckpt.log
summary
