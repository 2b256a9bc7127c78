#!/usr/bin/env bash
# v11 A/B (docs/gpu.md): the tensor-core cluster decode attention (default) against the v4 GQA kernel
# (VIVA_TENSOR_ATTN=gqa) in the same binary and call: cluster sizes, ring slots, timelines; TinyLlama and
# Llama-2-7B shapes. Inputs as run.sh (.carry/viva-bench, .carry/cuda-tests, .carry/fixtures, .carry/torch_baseline.py).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin
B="$C/viva-bench $CK --backend cuda --json $RES"
V="--prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
run $B --weights fp8 --label tc:default --agree 24 --prefill-len 512
VIVA_TENSOR_ATTN=gqa run $B --weights fp8 --label gqa --agree 24 $V
VIVA_TENSOR_ATTN_SLOTS=1 run $B --weights fp8 --label tc:s1 $V
VIVA_TENSOR_ATTN_CLUSTER=4 run $B --weights fp8 --label tc:c4 $V
run $B --weights fp8 --label tc:default-again $V
VIVA_TENSOR_ATTN=gqa run $B --weights fp8 --label gqa-again $V
[ -x $C/viva-bench-base ] && run $C/viva-bench-base $CK --backend cuda --json $RES --weights fp8 --label base $V
run $B --weights fp8 --label probe:timeline-tc $V --timeline 32
run $B --weights fp8 --label tc:long-ctx --prompt-len 1536 --new 256 $V
VIVA_TENSOR_ATTN=gqa run $B --weights fp8 --label gqa:long-ctx --prompt-len 1536 --new 256 $V
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128"
run7 $B7 --label llama7b:tc-default $V
VIVA_TENSOR_ATTN=gqa run7 $B7 --label llama7b:gqa $V
VIVA_TENSOR_ATTN_CLUSTER=1 run7 $B7 --label llama7b:tc-c1 $V
VIVA_TENSOR_ATTN_CLUSTER=1 VIVA_TENSOR_ATTN_SLOTS=1 run7 $B7 --label llama7b:tc-c1-s1 $V
run7 $B7 --label llama7b:tc-default-again $V
run7 $B7 --label llama7b:timeline-tc $V --timeline 16
summary
