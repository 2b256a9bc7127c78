#!/usr/bin/env bash
# The code it ran is commit 9248ab6 (reverted by the next commit: slower).
# v15e (docs/gpu.md): the gate/up -> down hand-off streamed by chunks of 128 (VIVA_TENSOR_STREAM_DOWN=1: down polls
# per-chunk counts instead of waiting for gate/up's grid) against the grid wait, same binary: tests/cuda.rs (with
# the streamed-vs-wait test), interleaved timings on both shapes, agreement with the CPU f32 path, timelines.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
SD=VIVA_TENSOR_STREAM_DOWN=1
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2 3; do
  run env $B --label tiny:wait
  run env $SD $B --label tiny:stream
done
run env $SD $B --new 32 --agree 32 --label tiny:stream-agree
run env $B --new 16 --timeline 20 --label tl:wait
run env $SD $B --new 16 --timeline 20 --label tl:stream
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
for i in 1 2; do
  run7 env $B7 --label llama7b:wait
  run7 env $SD $B7 --label llama7b:stream
done
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
