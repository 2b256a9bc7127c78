#!/usr/bin/env bash
# Ran at the commits named in docs/gpu.md v16; VIVA_TENSOR_GU_PF took an issuing point then (qkv, o, qkv+, o+); it now takes only off or MiB (o, once x' is staged).
# v16d (docs/gpu.md): v16c's idea with the requests issued where they stall nothing on the critical path: the
# q/k/v or o GEMV's blocks (one thread each, after their own pre-wait ring fills, before their PDL wait) request
# their share of the layer's gate/up weights into L2 (`VIVA_TENSOR_GU_PF=qkv|o[:MB]`). Same binary: tests/cuda.rs,
# interleaved timings (TinyLlama; Llama-2-7B with the first 16 MiB, its gate/up being larger than L2), timelines.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run env $B --label tiny:default
  run env VIVA_TENSOR_GU_PF=o $B --label tiny:pf-o
  run env VIVA_TENSOR_GU_PF=qkv $B --label tiny:pf-qkv
  run env VIVA_TENSOR_GU_PF=o:12 $B --label tiny:pf-o-12MB
done
run env $B --label tl:default --timeline 20
run env VIVA_TENSOR_GU_PF=o $B --label tl:pf-o --timeline 20
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
run7 env VIVA_TENSOR_GU_PF=o:16 $B7 --label llama7b:pf-o-16MB
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
