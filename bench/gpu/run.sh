#!/usr/bin/env bash
# GPU benchmark of viva_core on the device machine (see docs/gpu.md). Expects, built on the dev machine:
#   .carry/viva-bench, .carry/cuda-tests (the tests/cuda.rs binary), .carry/fixtures/{stories260k,bytelevel-tiny},
#   .carry/torch_baseline.py; for the BEAM step also .carry/beam (beam-runtime fetch), .carry/ebin
#   (erlc -o .carry/ebin src/*.erl bench/gpu/viva_gpu_beam.erl) and .carry/libviva_tensor_nif.so (make nif).
# Usage: bash bench/gpu/run.sh [sweep]     (writes logs and results.jsonl under $OUT)
#   BEAM=1: also time generate/3 through the BEAM;  LLAMA7B=1: also the Llama-2-7B shape (fp8 + torch-graph bf16)
#   (bench/gpu/llama7b.sh runs that part alone);  EXTRA=1: v9/v10 probe rows and the decode timeline;
#   BASE=1: also .carry/viva-bench-base (another commit's binary) at the default; EXTRA=1 and LLAMA7B=1 also time the
#   v4 GQA attention (VIVA_TENSOR_ATTN=gqa) against the default tensor-core cluster attention (v11), FP8 blocks of
#   64, the 5-slot ring and the v5-v8 CUDA-core GEMV on the Llama-2-7B shape (else only the default and blocks of 128)
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SHAPE=${SHAPE:-tinyllama-1.1b}

echo "== device"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader
ls /usr/local/cuda/lib64/libnvrtc.so* 2>/dev/null | head -3

echo "== bandwidth probe (device-to-device copy, bytes read + written)"
python3 - <<'PY' 2>&1 | tee "$OUT/bandwidth.txt"
import torch
n = 1 << 30
a = torch.empty(n, dtype=torch.uint8, device="cuda"); a.random_(0, 255); b = torch.empty_like(a)
for _ in range(3): b.copy_(a)
s, e = torch.cuda.Event(True), torch.cuda.Event(True); ts = []
for _ in range(20):
    s.record(); b.copy_(a); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
ts.sort(); t = ts[len(ts) // 2] / 1e3
print(f"copy 1 GiB: median {t*1e3:.3f} ms -> {2 * n / t / 1e9:.0f} GB/s (read + write)")
PY

cuda_tests

echo "== checkpoint: random $SHAPE (torch_baseline.py)"
[ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape $SHAPE 2>&1 | tail -1
if [ "${LLAMA7B:-0}" = 1 ] && [ ! -f $CK7/config.json ]; then  # written while the TinyLlama rows run
  python3 $C/torch_baseline.py --save-checkpoint $CK7 --shape llama-2-7b > "$OUT/ckpt7.log" 2>&1 &
  CK7PID=$!
fi

echo "== viva-bench"
B="$C/viva-bench $CK --backend cuda --json $RES"
if [ "${1:-}" = sweep ]; then
  # GEMV shape sweep (rows per warp x chunks per lane) on fp8/b16, then per-kernel profiles.
  for rw in 4 8; do for it in 1 2 4; do
    VIVA_TENSOR_GEMV_RW=$rw VIVA_TENSOR_GEMV_ITERS=$it run $B --weights fp8 --label viva:fp8/b16-rw$rw-it$it --prefill-len 0 --api-steps 0
  done; done
  for rw in 4 8; do VIVA_TENSOR_GEMV_RW=$rw run $B --weights bf16 --label viva:bf16-rw$rw --prefill-len 0 --api-steps 0; done
  run $B --weights fp8 --label viva:fp8/b16 --profile
  run $B --weights bf16 --label viva:bf16 --profile --new 32
else
  # v4 correctness on the TinyLlama shape: bf16 weights (f32 activations and KV) against the CPU f32
  # path, 300-token prefill (causal GQA kernel) then 16 decode steps (split GQA kernel).
  run $B --weights bf16 --label chk:bf16-vs-cpu --new 16 --prefill-len 0 --api-steps 0 --agree 16 --agree-prompt 300
  # Default (v14: fp8 with one scale per row, tensor-core GEMV), then blocks of 128 (v9-v13's default) and 64, the
  # v5-v8 CUDA-core GEMV, bf16, the v8 kernel. EXTRA=1 adds the tensor-core GEMV with a fixed ring (5 or 6 slots
  # for every matrix) and without its math.
  run $B --weights fp8 --label viva:fp8/row-default --agree ${AGREE:-24} --profile
  run $B --weights fp8 --fp8-block 128 --label viva:fp8/b128 --api-steps 0 --agree ${AGREE:-24}
  run $B --weights fp8 --fp8-block 64 --label viva:fp8/b64 --api-steps 0
  VIVA_TENSOR_GEMV=cuda-core run $B --weights fp8 --fp8-block 64 --label viva:fp8/b64-cudacore-v8 --prefill-len 0 --api-steps 0
  run $B --weights bf16 --label viva:bf16
  VIVA_TENSOR_PERSIST=1 run $B --weights fp8 --fp8-block 128 --label viva:fp8/b128-persistent-v8 --prefill-len 0 --api-steps 0
  if [ "${EXTRA:-0}" = 1 ]; then  # v9 probes: fixed rings of 5 / 6 slots, no math (wrong logits: timing only)
    VIVA_TENSOR_TC_RING=5 run $B --weights fp8 --label probe:tc2x5 --prefill-len 0 --api-steps 0
    VIVA_TENSOR_TC_RING=6 run $B --weights fp8 --label probe:tc2x6 --prefill-len 0 --api-steps 0
    VIVA_TENSOR_TC_FLAGS=2 run $B --weights fp8 --label probe:tc-nomath --prefill-len 0 --api-steps 0
    # v10 probes: without the weight copies, without copies and math (the kernel chain alone); the in-graph
    # timeline (its marks compiled in, so its own decode row is not a default timing).
    VIVA_TENSOR_TC_FLAGS=4 run $B --weights fp8 --label probe:tc-noload --prefill-len 0 --api-steps 0
    VIVA_TENSOR_TC_FLAGS=6 run $B --weights fp8 --label probe:tc-noload-nomath --prefill-len 0 --api-steps 0
    run $B --weights fp8 --label probe:timeline --prefill-len 0 --api-steps 0 --timeline 32
    # v11: the v4 GQA attention instead of the tensor-core cluster kernel, at the default and a 1536-token context.
    VIVA_TENSOR_ATTN=gqa run $B --weights fp8 --label probe:attn-gqa-v4 --prefill-len 0 --api-steps 0
    run $B --weights fp8 --label probe:ctx1536 --prompt-len 1536 --prefill-len 0 --api-steps 0
    VIVA_TENSOR_ATTN=gqa run $B --weights fp8 --label probe:ctx1536-attn-gqa-v4 --prompt-len 1536 --prefill-len 0 --api-steps 0
  fi
  # BASE=1: the default of another commit's binary (.carry/viva-bench-base) in the same call.
  if [ "${BASE:-0}" = 1 ] && [ -x $C/viva-bench-base ]; then
    run $C/viva-bench-base $CK --backend cuda --json $RES --weights fp8 --label base:fp8 --prefill-len 0 --api-steps 0
  fi
fi
for f in stories260k bytelevel-tiny; do
  run $C/viva-bench $C/fixtures/$f --backend cuda --weights fp8 --label $f:fp8/row --prompt-len 16 --new 64 --prefill-len 128 --agree 32 --json $RES
done

echo "== PyTorch peers (same card, same call)"
[ "${1:-}" = sweep ] && TORCH_VARIANTS=${TORCH_VARIANTS:-torch-graph:bf16}
timeout 240 python3 $C/torch_baseline.py --shape $SHAPE --variants ${TORCH_VARIANTS:-hf-eager,torch-graph:bf16,torch-graph:fp8} --json $RES 2>&1 | tee "$OUT/torch.log" | grep -v Warning


if [ "${BEAM:-0}" = 1 ] && [ -f $C/libviva_tensor_nif.so ]; then
  echo "== BEAM end to end (NIF + Erlang core, generate/3)"
  # shellcheck disable=SC1091
  source $C/beam/beam-runtime use $C/beam
  export VIVA_TENSOR_NIF=$PWD/$C/libviva_tensor_nif.so
  for w in fp8 bf16; do
    timeout 180 erl -noshell -pa $C/ebin -run viva_gpu_beam main $CK $w 2>&1 | tee -a "$OUT/beam.log"
  done
fi

if [ "${LLAMA7B:-0}" = 1 ]; then
  echo "== Llama-2-7B shape"
  [ -n "${CK7PID:-}" ] && wait $CK7PID; tail -1 "$OUT/ckpt7.log" 2>/dev/null
  df -h /tmp | tail -1
  run $C/viva-bench $CK7 --backend cuda --weights fp8 --label llama7b:fp8/row-default --new 128 --prefill-len 512 --api-steps 0 --json $RES
  run $C/viva-bench $CK7 --backend cuda --weights fp8 --fp8-block 128 --label llama7b:fp8/b128 --new 128 --prefill-len 0 --api-steps 0 --json $RES
  if [ "${BASE:-0}" = 1 ] && [ -x $C/viva-bench-base ]; then
    run $C/viva-bench-base $CK7 --backend cuda --weights fp8 --label llama7b:base --new 128 --prefill-len 0 --api-steps 0 --json $RES
  fi
  if [ "${EXTRA:-0}" = 1 ]; then
    VIVA_TENSOR_ATTN=gqa run $C/viva-bench $CK7 --backend cuda --weights fp8 --label llama7b:attn-gqa-v4 --new 128 --prefill-len 0 --api-steps 0 --json $RES
    run $C/viva-bench $CK7 --backend cuda --weights fp8 --fp8-block 64 --label llama7b:fp8/b64 --new 128 --prefill-len 0 --api-steps 0 --json $RES
    VIVA_TENSOR_TC_RING=5 run $C/viva-bench $CK7 --backend cuda --weights fp8 --fp8-block 128 --label llama7b:fp8/b128-tc2x5 --new 128 --prefill-len 0 --api-steps 0 --json $RES
    VIVA_TENSOR_GEMV=cuda-core run $C/viva-bench $CK7 --backend cuda --weights fp8 --fp8-block 64 --label llama7b:fp8/b64-cudacore-v8 --new 128 --prefill-len 0 --api-steps 0 --json $RES
  fi
  rm -rf $CK7
  timeout 200 python3 $C/torch_baseline.py --shape llama-2-7b --variants torch-graph:bf16 --new-tokens 128 --json $RES 2>&1 | grep -v Warning | tail -2
fi

summary
