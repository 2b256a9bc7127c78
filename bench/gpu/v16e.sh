#!/usr/bin/env bash
# Ran at the commits named in docs/gpu.md v16; VIVA_TENSOR_GU_PF took an issuing point then (qkv, o, qkv+, o+); it now takes only off or MiB (o, once x' is staged).
# v16e (docs/gpu.md): v16d on the Llama-2-7B shape, where o's blocks requesting gate/up's first 16 MiB into L2 read
# 361.6 against 354.7 tok/s in one pair: how much (8-32 MiB), from which kernel (q/k/v or o), and at which point (before
# the PDL wait, or `+`: once x' is staged), interleaved with the default in the same binary; no tests (v16d ran them).
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
[ -f $CK7/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b 2>&1 | tail -1
B7="$C/viva-bench $CK7 --backend cuda --weights fp8 --json $RES --new 128 --prefill-len 0 --api-steps 0"
run7 env $B7 --label llama7b:default
for v in o:16 o:8 o:32 o+:16 qkv:16; do run7 env VIVA_TENSOR_GU_PF=$v $B7 --label llama7b:pf-$v; done
run7 env $B7 --label llama7b:default
run7 env VIVA_TENSOR_GU_PF=o:16 $B7 --label llama7b:pf-o:16
summary
