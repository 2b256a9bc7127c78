"""HF transformers baseline for bench/cpu/run.sh: PyTorch on the CPU, float32, batch 1, greedy.

  python hf_bench.py --model DIR --label NAME --prompt-ids FILE --new 128 --reps 3 --threads 2 --json OUT

Prefill: wall time of one forward over the prompt, as generate's first step runs it (use_cache=True,
         logits_to_keep=1: lm_head for the last position only, which is also all viva computes).
Decode:  (time of generate() for N+1 new tokens - time for 1 new token) / N, the way
         /work/shared/bench/torch_baseline.py (hf-eager) measures it: the difference removes the prefill.
min_new_tokens=N keeps EOS from ending a run early. One warm-up of each before the timed repeats.
Appends one JSON line with the raw per-repeat numbers to --json; run.sh takes the medians.
"""
import argparse, json, re, time

import torch
import transformers
from transformers import LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--prompt-ids", required=True)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    ids = [int(x) for x in re.split(r"[,\s]+", open(a.prompt_ids).read().strip())]
    t = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t
    prompt = torch.tensor([ids], dtype=torch.long)
    mask = torch.ones_like(prompt)
    gen_kw = dict(attention_mask=mask, do_sample=False, temperature=None, top_p=None, top_k=None,
                  pad_token_id=model.config.eos_token_id)

    with torch.inference_mode():
        def prefill():
            t = time.perf_counter()
            model(prompt, attention_mask=mask, use_cache=True, logits_to_keep=1)
            return time.perf_counter() - t

        def gen(n):
            t = time.perf_counter()
            out = model.generate(prompt, max_new_tokens=n, min_new_tokens=n, **gen_kw)
            dt = time.perf_counter() - t
            assert out.shape[1] == len(ids) + n, out.shape
            return dt

        prefill(); gen(4)  # warm-up
        pre = [prefill() for _ in range(a.reps)]
        dec = []
        for _ in range(a.reps):
            t1 = gen(1)
            tn = gen(a.new + 1)
            dec.append((tn - t1) / a.new)

    row = dict(model=a.label, engine="HF transformers (torch cpu)", prompt_len=len(ids), new_tokens=a.new,
               load_s=load_s, prefill_s=pre, decode_s_per_token=dec, threads=torch.get_num_threads(),
               attn=getattr(model.config, "_attn_implementation", None), torch=torch.__version__,
               transformers=transformers.__version__)
    with open(a.json, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{a.label} HF: prefill {['%.6f' % x for x in pre]} s, decode {['%.6f' % x for x in dec]} s/token "
          f"(load {load_s:.2f} s, torch {torch.__version__}, {row['threads']} threads, attn {row['attn']})")


if __name__ == "__main__":
    main()
