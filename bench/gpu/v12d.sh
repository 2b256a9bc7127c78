#!/usr/bin/env bash
# (TC_EARLYREST, flag 4096, was taken out after this call: -2.4% on the TinyLlama shape, +0.2-1% on 7B; the flag is now ignored.)
# v12d (docs/gpu.md): the ring slots not requested before the wait issued right after x''s loads
# (VIVA_TENSOR_TC_FLAGS 4096, bench only), also with 3 / 4 slots before the wait ((F + 1) << 8); on the 7B shape
# also attention clusters of 4 blocks with a 1-slot ring (an o-projection block then fits beside each). Same binary.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NOTESTS=1 begin
B="$C/viva-bench $CK --backend cuda --json $RES --weights fp8 --prefill-len 0 --api-steps 0"
echo "== TinyLlama shape"
for f in 0 4096 5120 0 4096 5120; do VIVA_TENSOR_TC_FLAGS=$f run $B --label tiny:flags$f; done
echo "== Llama-2-7B shape"
wait $CKPID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
for f in 0 4096 5376; do VIVA_TENSOR_TC_FLAGS=$f run7 $B7 --label llama7b:flags$f; done
VIVA_TENSOR_ATTN_CLUSTER=4 VIVA_TENSOR_ATTN_SLOTS=1 run7 $B7 --label llama7b:attn-c4s1
VIVA_TENSOR_ATTN_CLUSTER=4 VIVA_TENSOR_ATTN_SLOTS=1 VIVA_TENSOR_TC_FLAGS=4096 run7 $B7 --label llama7b:attn-c4s1-flags4096
run7 $B7 --label llama7b:flags0-r2
summary
