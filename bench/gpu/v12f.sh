#!/usr/bin/env bash
# (The tile counter lives in commit cbcb49c only: it was reverted after this call, neutral on the 7B shape; on the
# current tree VIVA_TENSOR_TC_DYN is not read and flag 8192 is ignored, so every row here is the same kernel.)
# v12f (docs/gpu.md): large GEMVs (K >= 4096, two tiles or more per block: the 7B shape's qkv, gate/up, lm_head)
# hand out tiles from a counter after a static share (VIVA_TENSOR_TC_DYN percent, default 60) against static shares
# only (VIVA_TENSOR_TC_FLAGS=8192; with VIVA_TENSOR_TC_RING=5 too, since the counter runs those GEMVs with 5 ring
# slots instead of 6), same binary; tests/cuda.rs first; a per-block timeline of the default.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape (no GEMV qualifies: the rows must match)"
run $B --label tiny:default
VIVA_TENSOR_TC_FLAGS=8192 run $B --label tiny:static
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 $B7 --label llama7b:dyn60
VIVA_TENSOR_TC_FLAGS=8192 run7 $B7 --label llama7b:static
VIVA_TENSOR_TC_FLAGS=8192 VIVA_TENSOR_TC_RING=5 run7 $B7 --label llama7b:static-ring5
run7 $B7 --label llama7b:dyn60-r2
VIVA_TENSOR_TC_FLAGS=8192 run7 $B7 --label llama7b:static-r2
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-7b.bin run7 $B7 --label llama7b:timeline --timeline 8 && gzip -f $OUT/tl-7b.bin
summary
