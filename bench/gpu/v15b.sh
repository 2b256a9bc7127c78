#!/usr/bin/env bash
# The code it ran is commit e93e4b9 (reverted by the next commit: slower).
# v15b (docs/gpu.md): v15a's fold with the launch point of the next kernel moved (VIVA_TENSOR_ATTN_O_FLAGS: 2 once
# the attention is combined, 4 at the end; 1 issues o's copies at the start), against two kernels, same binary.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2; do
  run env VIVA_TENSOR_ATTN_O=0 $B --label tiny:two
  for f in ${FLAGS:-0 2 4 3}; do
    run env VIVA_TENSOR_ATTN_O=1 VIVA_TENSOR_ATTN_O_FLAGS=$f $B --label tiny:fold-$f
  done
done
for f in ${TLFLAGS:-2 4}; do
  run env VIVA_TENSOR_ATTN_O=1 VIVA_TENSOR_ATTN_O_FLAGS=$f $B --new 16 --timeline 20 --label tl:fold-$f
done
rm -f $OUT/ckpt.log
summary
