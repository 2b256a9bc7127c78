#!/usr/bin/env bash
# The code it ran is commit dee0bbc (reverted by the next commit: no gain).
# v15d (docs/gpu.md): ring slots requested before the PDL wait per matrix kind (VIVA_TENSOR_TC_PRE, host only; the
# default is 4 everywhere but matrices of 32 MB or more, which request their whole ring of 6), one kind changed at a
# time against the default, same binary, TinyLlama shape; the Llama-2-7B shape for VARS7 (space-separated specs).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2; do
  run env $B --label tiny:default
  for v in ${VARS:-down:2 down:3 down:6 gu:3 gu:5 gu:6 qkv:1 o:1 lm:4}; do
    run env VIVA_TENSOR_TC_PRE=$v $B --label tiny:$v
  done
done
if [ -n "${VARS7:-}" ]; then
  echo "== Llama-2-7B shape"
  wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
  B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
  run7 env $B7 --label llama7b:default
  for v in $VARS7; do run7 env VIVA_TENSOR_TC_PRE=$v $B7 --label llama7b:$v; done
fi
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
