#!/usr/bin/env bash
# v14d (docs/gpu.md): what per-row FP8 scales could give, before building them. -DTC_SCALE_PROBE (through
# VIVA_TENSOR_NVRTC_DEFINES; wrong results) makes the tensor-core GEMV skip its per-piece scale copies and scale
# multiplies: the bytes and instructions that one scale per row (applied in the epilogue) would leave. Same binary,
# interleaved, both shapes. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
P="VIVA_TENSOR_NVRTC_DEFINES=-DTC_SCALE_PROBE"
echo "== TinyLlama shape"
run env $B --label tiny:default
run env $P $B --label tiny:scale-probe
run env $B --label tiny:default
run env $P $B --label tiny:scale-probe
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
run7 env $P $B7 --label llama7b:scale-probe
run7 env $B7 --label llama7b:default
run7 env $P $B7 --label llama7b:scale-probe
rm -f $OUT/ckpt.log $OUT/ckpt7.log
summary
