#!/usr/bin/env bash
# v12a (docs/gpu.md): tests/cuda.rs on this commit; same-binary A/Bs of existing switches (attention ring 1 slot,
# which lets an o-projection block share an SM with a 7B attention block; GEMV ring 5 / 5 pre-wait slots);
# per-block timeline dumps (VIVA_TENSOR_TIMELINE_DUMP, gzipped under $OUT) of the TinyLlama and 7B shapes.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run $B --label tiny:default
VIVA_TENSOR_ATTN_SLOTS=1 run $B --label tiny:attn-slots1
VIVA_TENSOR_TC_RING=5 run $B --label tiny:ring5
run $B --label tiny:default-r2
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-tiny.bin run $B --label tiny:timeline --timeline 8 && gzip $OUT/tl-tiny.bin
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 $B7 --label llama7b:default
VIVA_TENSOR_ATTN_SLOTS=1 run7 $B7 --label llama7b:attn-slots1
VIVA_TENSOR_TC_FLAGS=1552 run7 $B7 --label llama7b:pre5
VIVA_TENSOR_ATTN_SLOTS=1 VIVA_TENSOR_TC_FLAGS=1552 run7 $B7 --label llama7b:attn-slots1-pre5
VIVA_TENSOR_ATTN_SLOTS=1 VIVA_TENSOR_TC_RING=5 run7 $B7 --label llama7b:attn-slots1-ring5
VIVA_TENSOR_TIMELINE_DUMP=$OUT/tl-7b.bin run7 $B7 --label llama7b:timeline --timeline 8 && gzip $OUT/tl-7b.bin
summary
