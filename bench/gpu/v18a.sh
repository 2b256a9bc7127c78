#!/usr/bin/env bash
# Ran at commit 86787af (the switch was reverted by the next commit; script and logs kept).
# v18a (docs/gpu.md): weights kept in a persisting share of L2 across decode steps (`VIVA_TENSOR_L2_PIN`): the first
# MiB of lm_head (`lm[:MiB]`), or a share of every matrix's accesses (`all[:MiB]`), interleaved with the default in
# one binary, TinyLlama shape (decode, then a 512-token prefill) and Llama-2-7B shape; no tests.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run $B --label tiny:default
  for v in lm lm:16 all all:16; do run env VIVA_TENSOR_L2_PIN=$v $B --label tiny:pin-$v; done
done
run $C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 512 --new 8 --api-steps 0 --label tiny:prefill-default
run env VIVA_TENSOR_L2_PIN=all $C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 512 --new 8 --api-steps 0 --label tiny:prefill-pin-all
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 $B7 --label llama7b:default
for v in lm all; do run7 env VIVA_TENSOR_L2_PIN=$v $B7 --label llama7b:pin-$v; done
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
