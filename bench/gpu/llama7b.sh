#!/usr/bin/env bash
# The Llama-2-7B-shape part of run.sh as its own call (a random checkpoint takes ~2 minutes to write):
# viva fp8 default (v14: one scale per row, tensor-core GEMV) with a 512-token prefill, blocks of 128 (v9-v13's
# default) twice around a second default row, the default without v16's gate/up L2 prefetch (`VIVA_TENSOR_GU_PF=off`),
# and the torch-graph bf16 peer, in one call.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
[ -f $CK7/config.json ] || timeout 300 python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b 2>&1 | tail -1
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --new 128 --api-steps 0 --json $RES"
run7 $B7 --label llama7b:fp8/row-default --prefill-len 512 --profile
run7 $B7 --label llama7b:fp8/b128 --fp8-block 128 --prefill-len 0
run7 $B7 --label llama7b:fp8/row-default-r2 --prefill-len 0
VIVA_TENSOR_GU_PF=off run7 $B7 --label llama7b:fp8/row-no-gate-up-l2-prefetch --prefill-len 0
run7 $B7 --label llama7b:fp8/b128-r2 --fp8-block 128 --prefill-len 0
timeout 200 python3 $C/torch_baseline.py --shape llama-2-7b --variants torch-graph:bf16 --new-tokens 128 --json $RES 2>&1 | grep -v Warning | tail -2
summary
