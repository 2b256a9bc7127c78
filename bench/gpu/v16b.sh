#!/usr/bin/env bash
# v16b (docs/gpu.md): where the persistent kernel's grid barrier goes under load. With --profile every block now
# stamps %globaltimer at its arrival at each barrier and at its release (kernels/persist.cu pk_grid_sync), and the
# profile prints, averaged over the step's barriers, how far apart the blocks arrive and how long after the last
# arrival the first and the last block are released. TinyLlama shape, FP8 blocks of 128, against the default.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny persistent
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
P="VIVA_TENSOR_PERSIST=1 VIVA_TENSOR_FP8_BLOCK=128"
run env $B --label tiny:default
for i in 1 2; do run env $P $B --label persist:$i --profile; done
run env $P VIVA_TENSOR_PERSIST_TILE=32768 $B --label persist:t32k --profile
rm -f $OUT/ckpt.log
summary
