#!/usr/bin/env bash
# Ran at the commits named in docs/gpu.md v16; VIVA_TENSOR_GU_PF took an issuing point then (qkv, o, qkv+, o+); it now takes only off or MiB (o, once x' is staged).
# v16f (docs/gpu.md): v16e's best point, o's blocks requesting gate/up's first MiB into L2 once their x' is staged
# (`VIVA_TENSOR_GU_PF=o+:MB`): its size on the Llama-2-7B shape, and whether it helps or hurts the TinyLlama shape
# (whose whole gate/up, 23 MB, fits in L2), interleaved with the default in the same binary; no tests.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run env $B --label tiny:default
  for v in o+ o+:12 o+:6; do run env VIVA_TENSOR_GU_PF=$v $B --label tiny:pf-$v; done
done
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
for v in o+:16 o+:8 o+:24; do run7 env VIVA_TENSOR_GU_PF=$v $B7 --label llama7b:pf-$v; done
run7 env $B7 --label llama7b:default
run7 env VIVA_TENSOR_GU_PF=o+:16 $B7 --label llama7b:pf-o+:16
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
