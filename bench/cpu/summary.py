"""Medians over the repeats (all lines of one model + engine) of bench/cpu/run.sh's results.jsonl -> one table (stdout) and the same table in Markdown.

  python summary.py RESULTS_JSONL MARKDOWN_OUT ["MODEL|ENGINE|why not run" ...]
"""
import json, statistics, sys


def main():
    res, md_out = sys.argv[1], sys.argv[2]
    skips = [s.split("|", 2) for s in sys.argv[3:]]
    rows = []  # one row per (model, engine), the repeats of all its lines merged
    for l in open(res):
        if l.strip():
            r = json.loads(l)
            same = [x for x in rows if (x["model"], x["engine"]) == (r["model"], r["engine"])]
            if same:
                same[0]["prefill_s"] += r["prefill_s"]
                same[0]["decode_s_per_token"] += r["decode_s_per_token"]
            else:
                rows.append(r)
    table = []  # (model, engine, prefill tok/s, decode tok/s, ms/token, note)
    models = list(dict.fromkeys([r["model"] for r in rows] + [s[0] for s in skips]))
    for m in models:
        for r in [r for r in rows if r["model"] == m]:
            pre = statistics.median(r["prefill_s"])
            dec = statistics.median(r["decode_s_per_token"])
            table.append((m, r["engine"], f"{r['prompt_len'] / pre:,.1f}", f"{1 / dec:,.1f}", f"{dec * 1e3:.3f}", ""))
        for sm, se, why in skips:
            if sm == m:
                table.append((m, se, "-", "-", "-", why))
    # Keep a stable engine order inside each model: NIF, pure BEAM, HF.
    order = {"viva NIF (cpu)": 0, "viva pure BEAM": 1}
    table.sort(key=lambda t: (models.index(t[0]), order.get(t[1], 2)))

    head = ("model", "engine", "prefill tok/s", "decode tok/s", "ms/token")
    w = [max(len(str(x)) for x in col) for col in zip(head, *[t[:5] for t in table])]
    line = lambda t: "  ".join(str(x).rjust(w[i]) if i >= 2 else str(x).ljust(w[i]) for i, x in enumerate(t))
    print(line(head))
    print("  ".join("-" * n for n in w))
    for t in table:
        print(line(t[:5]) + (f"  ({t[5]})" if t[5] else ""))

    with open(md_out, "w") as f:
        f.write("| model | engine | prefill tok/s | decode tok/s | ms/token |\n| --- | --- | ---: | ---: | ---: |\n")
        for t in table:
            if t[5]:
                f.write(f"| {t[0]} | {t[1]} | – | – | – ({t[5]}) |\n")
            else:
                f.write(f"| {t[0]} | {t[1]} | {t[2]} | {t[3]} | {t[4]} |\n")


if __name__ == "__main__":
    main()
