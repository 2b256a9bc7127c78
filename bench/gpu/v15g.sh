#!/usr/bin/env bash
# The code it ran is commit 0f4c031 (reverted by the next commit: slower).
# v15g (docs/gpu.md): E4M3 -> f16 by moving bits (integer ops; the values / 256, FP8_UNIT restores them) instead of
# cvt.rn.f16x2.e4m3x2, in every FP8 kernel (-DVIVA_FP8_BITS=1 through VIVA_TENSOR_NVRTC_DEFINES), against the
# default, same binary: tests/cuda.rs with the define, interleaved timings on both shapes, and the no-math probe
# (VIVA_TENSOR_TC_FLAGS=2, wrong results) for what the GEMV math costs now.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
BITS=VIVA_TENSOR_NVRTC_DEFINES=-DVIVA_FP8_BITS=1
TEST_ENV=$BITS TEST_LOG=-bits begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2; do
  run env $B --label tiny:default
  run env $BITS $B --label tiny:bits
done
run env VIVA_TENSOR_TC_FLAGS=2 $B --label probe:nomath
run env $BITS VIVA_TENSOR_TC_FLAGS=2 $B --label probe:bits-nomath
run env $BITS $B --new 32 --agree 32 --label tiny:bits-agree
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
run7 env $BITS $B7 --label llama7b:bits
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
