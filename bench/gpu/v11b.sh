#!/usr/bin/env bash
# v11b (docs/gpu.md): tensor-core GEMV probes through VIVA_TENSOR_TC_FLAGS (bench only): 16 reads a residual
# epilogue's rows with x' right after the wait; (F + 1) << 8 issues only F ring slots before the wait (the rest
# after x' is staged). Same binary and call; TinyLlama and Llama-2-7B shapes. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for f in 0 16 1040 1296 1552 16 1040; do VIVA_TENSOR_TC_FLAGS=$f run $B --label tiny:flags$f; done
VIVA_TENSOR_TC_FLAGS=1040 run $B --label tiny:timeline-1040 --timeline 32
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
for f in 0 16 1040 1296 1552 16; do VIVA_TENSOR_TC_FLAGS=$f run7 $B7 --label llama7b:flags$f; done

summary
