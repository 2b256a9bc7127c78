#!/usr/bin/env bash
# v12b (docs/gpu.md): the static x' shift for RMSNorm-input GEMVs and the whole-ring pre-wait for matrices of
# >= 32 MB, against the v11 behaviour in the same binary through VIVA_TENSOR_TC_FLAGS (bench only): 32 = x''s
# shift from the block max everywhere, 64 = TC_PREWAIT slots for every matrix, 96 = both (v11). tests/cuda.rs
# first; timelines (with the new phase 4: x loaded) dumped per block. Inputs as run.sh. Call c (the producers' maxima;
# 128 = without them): TINY_FLAGS='0 128 96 0 128 96' B7_FLAGS='0 128 96 0' bash bench/gpu/v12b.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for f in ${TINY_FLAGS:-0 96 32 64 0 96}; do VIVA_TENSOR_TC_FLAGS=$f run $B --label tiny:flags$f; done
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-tiny.bin run $B --label tiny:timeline --timeline 8 && gzip -f $OUT/tl-tiny.bin
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
for f in ${B7_FLAGS:-0 96 64 0}; do VIVA_TENSOR_TC_FLAGS=$f run7 $B7 --label llama7b:flags$f; done
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-7b.bin run7 $B7 --label llama7b:timeline --timeline 8 && gzip -f $OUT/tl-7b.bin
summary
