#!/usr/bin/env bash
# v12c (docs/gpu.md): x''s shift from the maxima reduced by the kernels that write the o and down projections'
# inputs (attention, gate/up's silu epilogue), against the same binary without them (VIVA_TENSOR_TC_FLAGS=128:
# v12b's default) and the v11 staging (96). tests/cuda.rs first. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
ckpts_bg
cuda_tests
wait_tiny
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for f in 0 128 96 0 128 96; do VIVA_TENSOR_TC_FLAGS=$f run $B --label tiny:flags$f; done
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-tiny.bin run $B --label tiny:timeline --timeline 8 && gzip -f $OUT/tl-tiny.bin
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
for f in 0 128 96 0; do VIVA_TENSOR_TC_FLAGS=$f run7 $B7 --label llama7b:flags$f; done
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-7b.bin run7 $B7 --label llama7b:timeline --timeline 8 && gzip -f $OUT/tl-7b.bin
summary
