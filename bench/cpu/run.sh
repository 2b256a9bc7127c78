#!/usr/bin/env bash
# CPU benchmark: viva_tensor through the BEAM API (Rust NIF CPU backend and pure-BEAM backend) beside
# HF transformers (PyTorch CPU, float32) on the same checkpoints, same prompt, same machine, same run.
# `make bench-cpu` runs this (after `make nif`); see bench/README.md. Results: a table on stdout, and
# build/bench/cpu-results.md (a ready-made section for bench/RESULTS.md) + build/bench/cpu-results.jsonl.
#
# Knobs (environment): PROMPT_LEN=128 NEW_TOKENS=128 REPS=3 THREADS=$(nproc)
#   TORCH_VERSION=2.15.0 TRANSFORMERS_VERSION=5.24.0
#   TORCH_INSTALL=stub|full  stub (default): the PyPI torch wheel with --no-deps + stub CUDA sonames
#                            (bench/cpu/torch_cuda_stubs.py), ~0.55 GB; full: plain `pip install torch`
#                            with all its NVIDIA runtime wheels (~3 GB download).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
B=build/bench
FIX=${VIVA_TENSOR_FIXTURES:-$ROOT/../shared/fixtures}
PROMPT_LEN=${PROMPT_LEN:-128}
NEW=${NEW_TOKENS:-128}
REPS=${REPS:-3}
THREADS=${THREADS:-$(nproc)}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
TRANSFORMERS_VERSION=${TRANSFORMERS_VERSION:-5.24.0}
TORCH_INSTALL=${TORCH_INSTALL:-stub}
NIF=$ROOT/priv/libviva_tensor_nif.so
CKPT_TOOL=native/target/release/viva-checkpoint
SMALL=$FIX/stories260k
BIG=$B/ckpt-1024
BIG_ARGS="--hidden 1024 --intermediate 2816 --layers 8 --heads 16 --kv-heads 4 --vocab 32000"
VENV=$B/venv
PY=$VENV/bin/python
RES=$B/cpu-results.jsonl
MD=$B/cpu-results.md
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
T_START=$(date +%s)
mkdir -p $B
step() { echo "== $* ($(( $(date +%s) - T_START )) s)"; }

[ -f "$SMALL/model.safetensors" ] || { echo "missing $SMALL (set VIVA_TENSOR_FIXTURES)"; exit 1; }
# Timings are only as good as the machine is quiet: note the load average before and after the runs.
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

step "build: NIF, viva-checkpoint, ebin"
[ -f "$NIF" ] || make --no-print-directory nif
[ -x $CKPT_TOOL ] || cargo build --release --manifest-path native/Cargo.toml -p viva_core --bin viva-checkpoint
rm -rf $B/ebin && mkdir -p $B/ebin
erlc -o $B/ebin src/*.erl bench/cpu/viva_bench.erl

step "checkpoint: $BIG (random weights, $BIG_ARGS)"
if [ "$(cat $BIG/.viva-bench-args 2>/dev/null)" != "$BIG_ARGS" ] || [ ! -f $BIG/model.safetensors ]; then
  rm -rf $BIG
  $CKPT_TOOL $BIG $BIG_ARGS
  echo "$BIG_ARGS" > $BIG/.viva-bench-args
fi

step "python venv: torch $TORCH_VERSION ($TORCH_INSTALL), transformers $TRANSFORMERS_VERSION"
STAMP="$TORCH_INSTALL torch==$TORCH_VERSION transformers==$TRANSFORMERS_VERSION"
if [ "$(cat $VENV/.viva-bench-ready 2>/dev/null)" != "$STAMP" ]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv python3-pip >/dev/null
  fi
  command -v gcc >/dev/null && command -v readelf >/dev/null || {
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc binutils >/dev/null; }
  rm -rf $VENV
  python3 -m venv $VENV
  PIP="$VENV/bin/pip install -q --disable-pip-version-check --no-input"
  if [ "$TORCH_INSTALL" = full ]; then
    $PIP "torch==$TORCH_VERSION" "transformers==$TRANSFORMERS_VERSION"
  else
    # The PyPI torch wheel for Linux x86-64 is a CUDA build whose requirements pull ~2.5 GB of NVIDIA
    # wheels. Take the wheel alone plus its pure-Python requirements; stubs stand in for the CUDA sonames.
    echo "(pip will list torch's NVIDIA requirements as not installed: expected, stubs replace them)"
    $PIP --no-deps "torch==$TORCH_VERSION"
    $PIP filelock "typing-extensions>=4.13.0" "sympy>=1.13.3" "networkx>=2.5.1" jinja2 "fsspec>=0.8.5" \
      "setuptools>=77.0.3" "transformers==$TRANSFORMERS_VERSION"
    $PY bench/cpu/torch_cuda_stubs.py
  fi
  $PY -c 'import torch, transformers; assert not torch.cuda.is_available(); torch.ones(2) @ torch.ones(2)'
  echo "$STAMP" > $VENV/.viva-bench-ready
fi

# Prompts: PROMPT_LEN fixed ids, 3 <= id < vocab (0, 1, 2 are unk/bos/eos), the same for every engine.
prompt() { awk -v n="$PROMPT_LEN" -v v="$1" 'BEGIN { for (i = 0; i < n; i++) printf "%d%s", 3 + (i * 7919 + 1009) % (v - 3), (i < n - 1 ? "," : "\n") }'; }
prompt 512 > $B/prompt-stories260k.txt
prompt 32000 > $B/prompt-1024.txt

: > $RES
export VIVA_TENSOR_NIF=$NIF RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS TOKENIZERS_PARALLELISM=false \
  HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
viva() {  # label ckpt backend prompt
  step "viva $3: $1"
  timeout 300 erl -noshell -pa $B/ebin -run viva_bench main "$2" "$3" "$1" "$4" "$NEW" 1 "$RES"
}
hf() {  # label ckpt prompt
  step "HF transformers: $1"
  timeout 300 $PY -W ignore bench/cpu/hf_bench.py --model "$2" --label "$1" --prompt-ids "$3" \
    --new "$NEW" --reps 1 --threads "$THREADS" --json "$RES"
}
# CPU used by other processes during the runs = all busy time (/proc/stat) - what this script's children used.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
ours() { awk '{ print $16 + $17 }' /proc/$$/stat; }
BUSY0=$(busy); OURS0=$(ours); WALL0=$(date +%s.%N)
# The repeats are interleaved (round r runs every engine once, each after its own warm-up), so that other
# work on the machine slows every engine alike instead of spoiling all repeats of one of them.
for r in $(seq 1 $REPS); do
  echo "-- round $r of $REPS"
  viva stories260k "$SMALL" cpu $B/prompt-stories260k.txt
  viva stories260k "$SMALL" beam $B/prompt-stories260k.txt
  hf stories260k "$SMALL" $B/prompt-stories260k.txt
  viva llama-1024x8 "$BIG" cpu $B/prompt-1024.txt
  hf llama-1024x8 "$BIG" $B/prompt-1024.txt
done

step "summary"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
OTHERS=$(awk -v b="$(( $(busy) - BUSY0 ))" -v o="$(( $(ours) - OURS0 ))" -v w0="$WALL0" -v w1="$(date +%s.%N)" \
  -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN { x = (b - o) / hz / ((w1 - w0) * n) * 100; printf "%.0f", (x < 0 ? 0 : x) }')
CPU=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CMD=$([ -n "${MAKELEVEL:-}" ] && echo "make bench-cpu" || echo "bash bench/cpu/run.sh")
TV=$($PY -c 'import torch, transformers; print(f"torch {torch.__version__}, transformers {transformers.__version__}")')
{
  echo "### CPU run $(date -u +%Y-%m-%d) — commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "- machine: $(nproc) cores, $CPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM"
  echo "- command: \`$CMD\` (prompt $PROMPT_LEN ids, $NEW new tokens, greedy, median of $REPS, $THREADS threads)"
  echo "- baseline: HF transformers, float32, $TV ($TORCH_INSTALL install)"
  echo "- other processes on the machine used $OTHERS% of its CPU time during the runs (load average before the build $LOAD0, after the runs $LOAD1)"
  echo
} > $MD.head
$PY bench/cpu/summary.py $RES $MD.table "llama-1024x8|viva pure BEAM|not run: pure Erlang is far too slow at this size, ~10 s/token"
cat $MD.head $MD.table > $MD && rm -f $MD.head $MD.table
echo
echo "other processes used $OTHERS% of the machine's CPU time during the runs$([ "$OTHERS" -ge 5 ] && echo ": timings are skewed (HF's OpenMP threads suffer most); rerun on an idle machine")"
echo "llama-1024x8 = random checkpoint from viva-checkpoint ($BIG_ARGS, f32, tied embeddings)."
echo "Markdown section for bench/RESULTS.md: $MD; raw numbers: $RES. Total $(( $(date +%s) - T_START )) s."
