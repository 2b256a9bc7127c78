#!/usr/bin/env bash
# v9 diagnosis (docs/gpu.md): kernel-level ncu timings of the tensor-core GEMV on the lm_head (32000 x 2048) and
# gate/up (11264 x 2048) matrices, with bench-only switches (VIVA_TENSOR_TC_FLAGS: 1 no L2 hints, 2 no math),
# ring sizes and blocks per SM, next to the v5 GEMV; then WarpStateStats of the default. (As run for v9b, at
# 8-row tiles, it also had ring 8 / 12 and a contiguous-piece switch, 4, since removed.)
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
echo "== device"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -f $CK/config.json ] || python3 $C/torch_baseline.py --save-checkpoint $CK --shape tinyllama-1.1b > "$OUT/ckpt.log" 2>&1
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
prof() {  # label, kernel regex, then env assignments
  local label=$1 k=$2; shift 2
  env "$@" VIVA_TENSOR_CUDA_GRAPH=0 timeout 100 ncu -k regex:$k -c 4 --metrics $M \
    $C/viva-bench $CK --backend cuda --weights fp8 --new 2 --prompt-len 8 --prefill-len 0 --api-steps 0 > "$OUT/ncu-$label.txt" 2>&1
  python3 - "$OUT/ncu-$label.txt" "$label" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
d = [float(x) for x in re.findall(r"gpu__time_duration.sum\s+\S+\s+([\d.]+)", t)]
b = [float(x) for x in re.findall(r"dram__bytes_read.sum\s+\S+\s+([\d.]+)", t)]
u = [re.search(r"gpu__time_duration.sum\s+(\S+)", t).group(1)] if d else ["?"]
if len(d) >= 4:
    print(f"{sys.argv[2]:28s} lm_head {d[0]:7.2f} {u[0]} ({b[0]/d[0]*1e-3 if u[0]=='us' else 0:5.2f} TB/s)  qkv {d[1]:6.2f}  o {d[2]:6.2f}  gate/up {d[3]:6.2f} ({b[3]/d[3]*1e-3 if u[0]=='us' else 0:5.2f} TB/s)")
else:
    print(sys.argv[2], "no data:", t[-600:])
PY
}
prof cudacore-r4 gemv_fp8_r VIVA_TENSOR_GEMV=cuda-core
prof tc-default gemv_fp8_tc
prof tc-2x4 gemv_fp8_tc VIVA_TENSOR_TC_RING=4
prof tc-3x3 gemv_fp8_tc VIVA_TENSOR_TC_BPS=3 VIVA_TENSOR_TC_RING=3
prof tc-nohint gemv_fp8_tc VIVA_TENSOR_TC_FLAGS=1
prof tc-nomath gemv_fp8_tc VIVA_TENSOR_TC_FLAGS=2
echo "== WarpStateStats + memory of the v9 lm_head GEMV (default)"
VIVA_TENSOR_CUDA_GRAPH=0 timeout 100 ncu -k regex:gemv_fp8_tc -c 1 --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
  $C/viva-bench $CK --backend cuda --weights fp8 --new 2 --prompt-len 8 --prefill-len 0 --api-steps 0 2>&1 | grep -vE "^model |^==PROF==|^\s*$|----" | head -90
