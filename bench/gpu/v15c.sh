#!/usr/bin/env bash
# The code it ran is commit e93e4b9 (reverted by the next commit: slower).
# v15c (docs/gpu.md): the tensor-core GEMV's mma on the E4M3 weights directly (m16n8k32, x' as two E4M3 terms;
# VIVA_TENSOR_NVRTC_DEFINES=-DTC_MMA8=1) against the f16 conversion, with and without the o fold (flags 2), same
# binary: tests/cuda.rs with the define (the default's digits: call b), interleaved timings on both shapes,
# agreement with the CPU f32 path, a timeline of the fold.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
M8=VIVA_TENSOR_NVRTC_DEFINES=-DTC_MMA8=1
TEST_ENV=$M8 TEST_LOG=-m8 begin
FO="VIVA_TENSOR_ATTN_O=1 VIVA_TENSOR_ATTN_O_FLAGS=2"
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for i in 1 2; do
  run env $B --label tiny:base
  run env $M8 $B --label tiny:mma8
  run env $FO $B --label tiny:fold
  run env $M8 $FO $B --label tiny:mma8-fold
done
run env $B --new 32 --agree 32 --label tiny:base-agree
run env $M8 $B --new 32 --agree 32 --label tiny:mma8-agree
run env $M8 $FO $B --new 16 --timeline 20 --label tl:mma8-fold
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:base
run7 env $M8 $B7 --label llama7b:mma8
run7 env $B7 --label llama7b:base
run7 env $M8 $B7 --label llama7b:mma8
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
