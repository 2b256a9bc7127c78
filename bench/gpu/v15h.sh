#!/usr/bin/env bash
# The code it ran is commit 33a83c8 (reverted by the next commit: slower).
# v15h (docs/gpu.md): the tensor-core GEMV converts half its E4M3 words by integer bit moves (their own accumulator,
# x 256 after) and half by cvt, so that the integer pipe and the conversion unit share the work (-DVIVA_FP8_MIX=1
# through VIVA_TENSOR_NVRTC_DEFINES), against the default, same binary: tests/cuda.rs with the define, interleaved
# timings on both shapes.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
MIX=VIVA_TENSOR_NVRTC_DEFINES=-DVIVA_FP8_MIX=1
TEST_ENV=$MIX TEST_LOG=-mix begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2; do
  run env $B --label tiny:default
  run env $MIX $B --label tiny:mix
done
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
run7 env $MIX $B7 --label llama7b:mix
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
