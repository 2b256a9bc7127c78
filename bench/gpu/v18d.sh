#!/usr/bin/env bash
# v18d (docs/gpu.md): the tensor-core decode attention in clusters of half the size while every warp has at most one
# 32-position tile (the new default), against one size throughout (`VIVA_TENSOR_ATTN_SHORT=0`, v11-v17), in one
# binary: all of tests/cuda.rs, then TinyLlama shape at 128-384 positions (three rounds), 384-640 (the switch at 512)
# and 1536-1792; Llama-2-7B shape at 32-160 (its switch at 128: clusters of 1, then 2) and 128-256.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2 3; do
  run $B --label tiny:halves
  run env VIVA_TENSOR_ATTN_SHORT=0 $B --label tiny:one-size
done
for p in 384 1536; do
  run $B --label tiny:halves@$p --prompt-len $p
  run env VIVA_TENSOR_ATTN_SHORT=0 $B --label tiny:one-size@$p --prompt-len $p
done
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
for p in 32 128; do
  run7 $B7 --label llama7b:halves@$p --prompt-len $p
  run7 env VIVA_TENSOR_ATTN_SHORT=0 $B7 --label llama7b:one-size@$p --prompt-len $p
done
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
