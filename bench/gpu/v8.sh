#!/usr/bin/env bash
# v8 call (docs/gpu.md): the persistent FP8 decode kernel (kernels/persist.cu) against the multi-kernel graph
# of v7, on the same card in one call: correctness (tests/cuda.rs, incl. persistent vs multi-kernel logits and
# on-device vs host argmax), decode timings with tile-size variants, the torch-graph bf16 peer. Inputs as run.sh.
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
( [ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1 ) &
CKPID=$!
echo "== correctness: tests/cuda.rs"
VIVA_TENSOR_FIXTURES=$C/fixtures timeout 300 $C/cuda-tests --test-threads=1 --nocapture 2>&1 \
  | tee "$OUT/cuda-tests.log" | grep -E "SKIPPED|persistent|agreement|test result|panicked|FAILED|free device|not used"
wait $CKPID; tail -1 "$OUT/ckpt.log"
B="$C/viva-bench $CK --backend cuda --json $RES"
echo "== decode: persistent (v8) vs multi-kernel (v7), interleaved, with per-phase profiles"
VIVA_TENSOR_PERSIST=1 run $B --weights fp8 --label v8-fp8-b64 --prefill-len 0 --agree 24 --profile
VIVA_TENSOR_PERSIST=0 run $B --weights fp8 --label v7-fp8-b64 --prefill-len 0 --profile
VIVA_TENSOR_PERSIST=1 run $B --weights fp8 --label v8-fp8-b64-r2 --prefill-len 512
echo "== torch-graph bf16 peer"
timeout 200 python3 $C/torch_baseline.py --shape tinyllama-1.1b --variants torch-graph:bf16 --json $RES 2>&1 | grep -v Warning | tail -1
if [ "${LLAMA7B:-1}" = 1 ]; then
  echo "== Llama-2-7B shape"
  [ -f $CK7/config.json ] || timeout 300 python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b 2>&1 | tail -1
  B7="$C/viva-bench $CK7 --backend cuda --json $RES --weights fp8 --new 128 --prefill-len 0 --api-steps 0"
  VIVA_TENSOR_PERSIST=1 run7 $B7 --label llama7b-v8-fp8-b64 --profile
  VIVA_TENSOR_PERSIST=0 run7 $B7 --label llama7b-v7-fp8-b64
  timeout 150 python3 $C/torch_baseline.py --shape llama-2-7b --variants torch-graph:bf16 --new-tokens 128 --json $RES 2>&1 | grep -v Warning | tail -1
fi
for T in 8192 32768; do
  VIVA_TENSOR_PERSIST=1 VIVA_TENSOR_PERSIST_TILE=$T run $B --weights fp8 --label v8-fp8-b64-tile$T --prefill-len 0 --api-steps 0
done
VIVA_TENSOR_PERSIST=1 run $B --weights fp8 --fp8-block 128 --label v8-fp8-b128 --prefill-len 0 --api-steps 0
VIVA_TENSOR_PERSIST=1 run $B --weights fp8 --label v8-fp8-b64-long --prompt-len 1500 --new 256 --prefill-len 0 --api-steps 0
VIVA_TENSOR_PERSIST=0 run $B --weights fp8 --label v7-fp8-b64-long --prompt-len 1500 --new 256 --prefill-len 0 --api-steps 0
summary
