#!/usr/bin/env python3
"""Per-block view of a decode-step timeline dump (docs/gpu.md v12).

`VIVA_TENSOR_TIMELINE_DUMP=FILE viva-bench MODEL --timeline N` writes the last replay's raw buffer: two u64 (launches,
u64 per launch), then per launch 12 (first, last) marks and 8 u64 per block (marks 0-5 as %globaltimer ns, 7 = %smid;
kernels/common.cuh tl_mark). Launch 5 l + k is layer l's k-th kernel (qkv, attention, o, gate/up, down); the last is
lm_head. Usage: tl_blocks.py FILE ROWS[,ROWS...] where ROWS is each GEMV's output rows in launch order (qkv, o,
gate/up, down, lm_head), e.g. 2560,2048,11264,2048,32000 for the TinyLlama shape.
Prints, per GEMV kind over layers 1.., how block ends spread (relative to the previous launch's last end), how they
split by the number of 16-row tiles a block owns, and how stable each SM's lateness is across layers.
"""
import struct, sys, warnings
import numpy as np

def load(path):
    raw = open(path, "rb").read()
    n, stride = struct.unpack("<QQ", raw[:16])
    return np.frombuffer(raw[16:], dtype="<u8").reshape(n, stride)

def blocks(v, j):
    pb = v[j, 12:].reshape(-1, 8)
    idx = np.nonzero(pb[:, 0])[0]
    return idx, pb[idx]

def main():
    warnings.simplefilter("ignore", RuntimeWarning)
    v = load(sys.argv[1])
    rows = [int(x) for x in sys.argv[2].split(",")]
    nl = (v.shape[0] - 1) // 5
    for kind, name, n in zip([0, 2, 3, 4, 5], ["qkv", "o", "gate/up", "down", "lm_head"], rows):
        ends, by_tiles, per_sm = [], {}, np.full((nl, 1024), np.nan)
        layers = [None] if kind == 5 else range(1, nl)
        for l in layers:
            j = v.shape[0] - 1 if kind == 5 else 5 * l + kind
            idx, pb = blocks(v, j)
            en = (pb[:, 5].astype(np.int64) - int(v[j - 1, 11])) / 1e3
            g, t = len(idx), (n + 15) // 16
            tiles = np.array([((b + 1) * t) // g - (b * t) // g for b in idx])
            ends.append((en.max(), en.mean()))
            for k in np.unique(tiles):
                by_tiles.setdefault(int(k), []).append(en[tiles == k].mean())
            if l is not None:
                for s in np.unique(pb[:, 7]):
                    per_sm[l, s] = en[pb[:, 7] == s].max()
                per_sm[l] -= np.nanmean(per_sm[l])
        e = np.array(ends)
        tl = ", ".join(f"{k} tiles: mean end {np.mean(x):.2f}" for k, x in sorted(by_tiles.items()))
        print(f"{name:8s} last end {e[:, 0].mean():6.2f} us, mean block end {e[:, 1].mean():6.2f}; {tl}")
        if kind != 5:
            m = per_sm[1:]
            a, b = np.nanmean(m[::2], 0), np.nanmean(m[1::2], 0)
            ok = np.isfinite(a) & np.isfinite(b)
            mean = np.nanmean(m, 0)
            fast = np.nonzero(mean < -1.0)[0]
            print(f"         SM lateness split-half correlation {np.corrcoef(a[ok], b[ok])[0, 1]:.2f}; "
                  f"SMs > 1 us early on average: {len(fast)} {[int(s) for s in fast]}")

if __name__ == "__main__":
    main()
