#!/usr/bin/env bash
# GPU benchmark of viva_core on the device machine (see docs/gpu.md). Expects, built on the dev machine:
#   .carry/viva-bench, .carry/cuda-tests (the tests/cuda.rs binary), .carry/fixtures/{stories260k,bytelevel-tiny},
#   .carry/torch_baseline.py
# Usage: bash bench/gpu/run.sh [sweep]     (writes logs and results.jsonl under $OUT)
set -u
C=${CARRY:-.carry}
OUT=${OUT:-/tmp/viva-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
RES="$OUT/results.jsonl"; : > "$RES"
CK=/tmp/tinyllama
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

echo "== correctness: tests/cuda.rs"
VIVA_TENSOR_FIXTURES=$C/fixtures timeout 240 $C/cuda-tests --test-threads=1 --nocapture 2>&1 | tee "$OUT/cuda-tests.log" | grep -E "SKIPPED|CUDA device|agreement|test |result|panicked|free device" 

echo "== checkpoint: random $SHAPE (torch_baseline.py)"
[ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape $SHAPE 2>&1 | tail -1

echo "== viva-bench"
B="$C/viva-bench $CK --backend cuda --json $RES"
run() { echo "-- $*"; timeout 120 "$@" 2>&1 | tee -a "$OUT/bench.log" | grep -v "^model " ; }
if [ "${1:-}" = sweep ]; then
  # GEMV shape sweep (rows per warp x chunks per lane) on fp8/b16, then per-kernel profiles.
  for rw in 4 8; do for it in 1 2 4; do
    VIVA_TENSOR_GEMV_RW=$rw VIVA_TENSOR_GEMV_ITERS=$it run $B --weights fp8 --label viva:fp8/b16-rw$rw-it$it --prefill-len 0 --api-steps 0
  done; done
  for rw in 4 8; do VIVA_TENSOR_GEMV_RW=$rw run $B --weights bf16 --label viva:bf16-rw$rw --prefill-len 0 --api-steps 0; done
  run $B --weights fp8 --label viva:fp8/b16 --profile
  run $B --weights bf16 --label viva:bf16 --profile --new 32
else
  run $B --weights bf16 --label viva:bf16
  run $B --weights fp8 --fp8-block 16 --label viva:fp8/b16 --agree ${AGREE:-24} --profile
  run $B --weights fp8 --fp8-block 32 --label viva:fp8/b32 --prefill-len 0 --api-steps 0
  run $B --weights fp8 --fp8-block 64 --label viva:fp8/b64 --prefill-len 0 --api-steps 0
  run $B --weights fp8 --fp8-block 128 --label viva:fp8/b128
  VIVA_TENSOR_PDL=0 run $B --weights fp8 --fp8-block 16 --label viva:fp8/b16-noPDL --prefill-len 0 --api-steps 0
  VIVA_TENSOR_CUDA_GRAPH=0 run $B --weights fp8 --fp8-block 16 --label viva:fp8/b16-nograph --prefill-len 0 --api-steps 0
fi
for f in stories260k bytelevel-tiny; do
  run $C/viva-bench $C/fixtures/$f --backend cuda --weights fp8 --label $f:fp8/b16 --prompt-len 16 --new 64 --prefill-len 128 --agree 32 --json $RES
done

echo "== PyTorch peers (same card, same call)"
[ "${1:-}" = sweep ] && TORCH_VARIANTS=${TORCH_VARIANTS:-torch-graph:bf16}
timeout 240 python3 $C/torch_baseline.py --shape $SHAPE --variants ${TORCH_VARIANTS:-hf-eager,torch-graph:bf16,torch-graph:fp8} --json $RES 2>&1 | tee "$OUT/torch.log" | grep -v Warning

echo "== summary"
python3 - "$RES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'variant':26s} {'tok/s':>9s} {'ms/tok':>8s} {'GB/tok':>7s} {'GB/s':>6s} {'fwd ms/tok':>10s} {'prefill ms':>10s}  agreement")
for r in rows:
    if "label" in r:
        a = r.get("agree"); ag = f"top1 {a['top1']:.3f} rel {a['rel_mean']:.2e}" if a else ""
        pf = f"{r['prefill_ms']:.2f}@{r['prefill_len']}" if r.get("prefill_ms") else "-"
        print(f"{r['label']:26s} {r['tok_s']:9.1f} {r['ms_tok']:8.3f} {r['weight_gb']:7.3f} {r['gb_s']:6.0f} {r['api_ms_tok']:10.3f} {pf:>10s}  {ag}")
    else:
        print(f"{'torch:' + r['variant']:26s} {r['tok_s']:9.1f} {r['ms_tok']:8.3f} {r['weight_gb']:7.3f} {r['tb_s']*1e3:6.0f}")
PY
