//! Host side of the tensor-parallel decode kernel (kernels/tp.cu, docs/gpu.md v17): which shapes it takes, how a
//! layer's rows are dealt to the blocks, and the per-block weight streams in the kernel's mma fragment order. No
//! CUDA here, so the layout is unit-tested on any machine (the tests multiply through the packed streams the way
//! the kernel does and compare with the plain row-major product).

use crate::config::Config;
use rayon::prelude::*;

/// Blocks per cluster (one per SM): the kernel's clusters of 16 are the non-portable size sm_90 allows.
pub const CLUSTER: usize = 16;
/// Bytes of a ring slot (kernels/tp.cu TP_SLOT).
pub const SLOT: usize = 16384;
/// Bytes of one packed 16-row tile per 32 columns (a "pair" of two m16n8k16 A operands, 32 lanes x 16 bytes).
const PAIR: usize = 512;
/// Bytes of one packed m16n8k8 tile of down (16 rows x 8 intermediate indices).
const K8: usize = 128;

/// The shape facts the kernel and the packer share, for a model and a number of clusters.
#[derive(Clone, Debug, PartialEq)]
pub struct TpShape {
    pub ncl: usize,
    pub nblk: usize,
    /// Query heads per KV head.
    pub g: usize,
    pub hd: usize,
    pub hidden: usize,
    pub inter: usize,
    pub vocab: usize,
    /// Rows of one KV group's q/k/v: (g + 2) hd, and their 16-row tiles.
    pub qvn: usize,
    pub tq: usize,
    /// Most q/k/v values one block holds (16 x its most tiles).
    pub nqmax: usize,
    /// Hidden rows a block owns in the exchanges (hidden / CLUSTER), and their 16-row tiles.
    pub p: usize,
    pub pt: usize,
    /// 16-row tiles of the hidden size (down's rows).
    pub ht: usize,
    /// Padded row lengths: hidden (q/k/v, gate/up, lm_head) and one group's attention output (o's columns).
    pub kph: usize,
    pub kpo: usize,
    /// Attention outputs of a group (g hd) and the slice each block combines.
    pub natt: usize,
    pub d: usize,
    /// Row stride (floats) of the cluster exchange buffers.
    pub xbs: usize,
    /// 8-index units of the intermediate size.
    pub units: usize,
}

impl TpShape {
    /// The layout for `cfg` on `ncl` clusters, or why the kernel does not take this model.
    pub fn new(cfg: &Config, ncl: usize) -> Result<TpShape, String> {
        let (h, kvh, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        if kvh == 0 || h % kvh != 0 {
            return Err(format!("{h} query heads do not split over {kvh} KV heads"));
        }
        let g = h / kvh;
        if g > 8 {
            return Err(format!("it runs at most 8 query heads per KV head (one warp each), not {g}"));
        }
        if kvh > ncl || ncl > 16 {
            return Err(format!("it needs one cluster per KV head ({kvh}) and at most 16 clusters; {ncl} fit"));
        }
        if !hd.is_power_of_two() || !(8..=128).contains(&hd) {
            return Err(format!("it needs head_dim a power of two from 8 to 128, not {hd}"));
        }
        let hidden = cfg.hidden_size;
        if !hidden.is_multiple_of(4 * CLUSTER) || hidden > 2048 {
            return Err(format!("it needs the hidden size a multiple of {} up to 2048, not {hidden}", 4 * CLUSTER));
        }
        let natt = g * hd;
        if natt % CLUSTER != 0 || hd % (natt / CLUSTER) != 0 {
            return Err(format!("{g} heads of {hd} do not split into {CLUSTER} equal slices within heads"));
        }
        let d = natt / CLUSTER;
        let dpay = (d + 2).div_ceil(4) * 4;
        if g * (hd + 2) > 1024 || CLUSTER * dpay > 1024 {
            return Err("the attention partials do not fit the kernel's scratch".into());
        }
        let p = hidden / CLUSTER;
        let qvn = (g + 2) * hd;
        let tq = qvn.div_ceil(16);
        let nqmax = 16 * tq.div_ceil(CLUSTER);
        let xbs = [p, nqmax, dpay, d.div_ceil(4) * 4].into_iter().max().unwrap_or(4).div_ceil(4) * 4;
        Ok(TpShape {
            ncl,
            nblk: ncl * CLUSTER,
            g,
            hd,
            hidden,
            inter: cfg.intermediate_size,
            vocab: cfg.vocab_size,
            qvn,
            tq,
            nqmax,
            p,
            pt: p.div_ceil(16),
            ht: hidden.div_ceil(16),
            kph: super::pack::padded(hidden),
            kpo: super::pack::padded(natt),
            natt,
            d,
            xbs,
            units: cfg.intermediate_size.div_ceil(8),
        })
    }

    /// Is block `b` in an attention cluster (cluster index < number of KV heads)?
    pub fn attn(&self, b: usize, kvh: usize) -> bool {
        b / CLUSTER < kvh
    }

    /// The q/k/v tiles [first, first + n) of the group that block `b` multiplies (as kernels/tp.cu).
    pub fn qkv_tiles(&self, b: usize) -> (usize, usize) {
        let r = b % CLUSTER;
        let t0 = r * self.tq / CLUSTER;
        (t0, (r + 1) * self.tq / CLUSTER - t0)
    }

    /// Bytes of the q/k/v and o stages of block `b` (0 outside the attention clusters).
    pub fn attn_bytes(&self, b: usize, kvh: usize) -> usize {
        if !self.attn(b, kvh) {
            return 0;
        }
        (self.qkv_tiles(b).1 * self.kph + self.pt * self.kpo) / 32 * PAIR
    }

    /// Bytes one 8-index unit of gate/up and down adds to a block's stream.
    pub fn unit_bytes(&self) -> usize {
        self.kph / 32 * PAIR + self.ht * K8
    }
}

/// Deals `units` MLP units to blocks carrying `fixed[b]` other bytes, so that every block streams about the same
/// bytes: returns (first unit, units) per block, in block order.
pub fn balance_units(fixed: &[usize], units: usize, unit_bytes: usize) -> Vec<(usize, usize)> {
    let n = fixed.len();
    if n == 0 {
        return Vec::new();
    }
    let total: usize = fixed.iter().sum::<usize>() + units * unit_bytes;
    let target = total as f64 / n as f64;
    let mut nu: Vec<usize> =
        fixed.iter().map(|&f| ((target - f as f64) / unit_bytes as f64).round().max(0.0) as usize).collect();
    let load = |nu: &[usize], b: usize| fixed[b] + nu[b] * unit_bytes;
    let mut sum: usize = nu.iter().sum();
    while sum > units {
        // Take from the most loaded block that has a unit.
        let b = (0..n).filter(|&b| nu[b] > 0).max_by_key(|&b| (load(&nu, b), b)).unwrap_or(0);
        nu[b] -= 1;
        sum -= 1;
    }
    while sum < units {
        let b = (0..n).min_by_key(|&b| (load(&nu, b), b)).unwrap_or(0);
        nu[b] += 1;
        sum += 1;
    }
    let mut first = 0;
    nu.iter()
        .map(|&k| {
            let r = (first, k);
            first += k;
            r
        })
        .collect()
}

/// A row-major FP8 matrix as uploaded: `n` rows of `kp` bytes.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub w: &'a [u8],
    pub n: usize,
    pub kp: usize,
}

impl Mat<'_> {
    /// Byte (row, col), 0 outside the matrix.
    fn at(&self, row: usize, col: usize) -> u8 {
        if row < self.n && col < self.kp {
            self.w[row * self.kp + col]
        } else {
            0
        }
    }
}

/// One 16-row tile of `kp_dst` columns in fragment order: for each 32-column pair, lane L = 4g + q gets rows g and
/// g + 8 at columns 2q, 2q + 1 | 2q + 8, 2q + 9, then the same 16 columns on. `rows[m]` is the source row of tile
/// row m (None: zeros); source column = `c0` + tile column, where the tile column is below `kvalid`.
pub fn pack_tile(out: &mut Vec<u8>, m: Mat, rows: &[Option<usize>; 16], c0: usize, kvalid: usize, kp_dst: usize) {
    let a = |r: usize, k: usize| match rows[r] {
        Some(row) if k < kvalid => m.at(row, c0 + k),
        _ => 0,
    };
    for pair in 0..kp_dst / 32 {
        for lane in 0..32 {
            let (g, q) = (lane / 4, lane % 4);
            for half in 0..2 {
                let kb = 32 * pair + 16 * half + 2 * q;
                out.extend_from_slice(&[
                    a(g, kb),
                    a(g, kb + 1),
                    a(g + 8, kb),
                    a(g + 8, kb + 1),
                    a(g, kb + 8),
                    a(g, kb + 9),
                    a(g + 8, kb + 8),
                    a(g + 8, kb + 9),
                ]);
            }
        }
    }
}

/// down's part of a block's stream: for each of the block's units (8 intermediate indices from `u0`), for each
/// 16-row tile of the hidden rows, lane L = 4g + q gets rows g, g + 8 at indices 2q, 2q + 1 (m16n8k8 A operands).
pub fn pack_down(out: &mut Vec<u8>, down: Mat, hidden: usize, inter: usize, u0: usize, nu: usize) {
    let a = |row: usize, k: usize| if row < hidden && k < inter { down.at(row, k) } else { 0 };
    for u in u0..u0 + nu {
        for rt in 0..hidden.div_ceil(16) {
            for lane in 0..32 {
                let (g, q) = (lane / 4, lane % 4);
                let (r0, r1, k) = (rt * 16 + g, rt * 16 + g + 8, u * 8 + 2 * q);
                out.extend_from_slice(&[a(r0, k), a(r0, k + 1), a(r1, k), a(r1, k + 1)]);
            }
        }
    }
}

/// One layer's matrices as uploaded (rows of q/k/v, o, gate/up interleaved gate_j, up_j, and down).
pub struct LayerMats<'a> {
    pub qkv: Mat<'a>,
    pub o: Mat<'a>,
    pub gate_up: Mat<'a>,
    pub down: Mat<'a>,
}

/// Per-block plan entries (kernels/tp.cu `bplan`, 8 ints a block): first gate/up unit, units, first lm_head tile,
/// lm_head tiles.
pub fn block_plan(s: &TpShape, kvh: usize) -> Vec<i32> {
    let fixed: Vec<usize> = (0..s.nblk).map(|b| s.attn_bytes(b, kvh)).collect();
    let units = balance_units(&fixed, s.units, s.unit_bytes());
    let tl = s.vocab.div_ceil(16);
    let mut plan = vec![0i32; s.nblk * 8];
    for (b, &(u0, nu)) in units.iter().enumerate() {
        let l0 = b * tl / s.nblk;
        let nl = (b + 1) * tl / s.nblk - l0;
        plan[b * 8..b * 8 + 4].copy_from_slice(&[u0 as i32, nu as i32, l0 as i32, nl as i32]);
    }
    plan
}

/// Row `i` of KV group `grp`'s q/k/v list (q of its heads, then its K head, then its V head) in the fused q/k/v
/// matrix of `h` query heads and `kvh` KV heads.
pub fn qkv_row(i: usize, grp: usize, g: usize, h: usize, kvh: usize, hd: usize) -> usize {
    if i < g * hd {
        grp * g * hd + i
    } else if i < (g + 1) * hd {
        h * hd + grp * hd + (i - g * hd)
    } else {
        (h + kvh) * hd + grp * hd + (i - (g + 1) * hd)
    }
}

/// Block `b`'s stream for one layer: q/k/v tiles and o tiles (attention clusters), gate/up units, down.
pub fn layer_stream(s: &TpShape, cfg: &Config, m: &LayerMats, plan: &[i32], b: usize) -> Vec<u8> {
    let kvh = cfg.num_kv_heads;
    let (u0, nu) = (plan[b * 8] as usize, plan[b * 8 + 1] as usize);
    let mut out = Vec::with_capacity(s.attn_bytes(b, kvh) + nu * s.unit_bytes());
    if s.attn(b, kvh) {
        let (grp, r) = (b / CLUSTER, b % CLUSTER);
        let (t0, nt) = s.qkv_tiles(b);
        for t in t0..t0 + nt {
            let rows: [Option<usize>; 16] = std::array::from_fn(|i| {
                let gi = t * 16 + i;
                (gi < s.qvn).then(|| qkv_row(gi, grp, s.g, cfg.num_heads, kvh, s.hd))
            });
            pack_tile(&mut out, m.qkv, &rows, 0, s.hidden, s.kph);
        }
        for t in 0..s.pt {
            let rows: [Option<usize>; 16] = std::array::from_fn(|i| (t * 16 + i < s.p).then(|| r * s.p + t * 16 + i));
            pack_tile(&mut out, m.o, &rows, grp * s.natt, s.natt, s.kpo);
        }
    }
    for u in u0..u0 + nu {
        let rows: [Option<usize>; 16] = std::array::from_fn(|i| {
            let j = u * 8 + (i & 7);
            (j < s.inter).then_some(2 * j + (i >> 3))
        });
        pack_tile(&mut out, m.gate_up, &rows, 0, s.hidden, s.kph);
    }
    pack_down(&mut out, m.down, s.hidden, s.inter, u0, nu);
    out
}

/// Block `b`'s lm_head tiles.
pub fn lm_stream(s: &TpShape, lm: Mat, plan: &[i32], b: usize) -> Vec<u8> {
    let (l0, nl) = (plan[b * 8 + 2] as usize, plan[b * 8 + 3] as usize);
    let mut out = Vec::with_capacity(nl * s.kph * 16);
    for t in l0..l0 + nl {
        let rows: [Option<usize>; 16] = std::array::from_fn(|i| (t * 16 + i < s.vocab).then_some(t * 16 + i));
        pack_tile(&mut out, lm, &rows, 0, s.hidden, s.kph);
    }
    out
}

/// Every block's streams, laid out layer by layer (then lm_head), block by block, each 128-byte aligned: the
/// bytes and the offsets `soff[layer * nblk + b]` (layer = number of layers: lm_head).
pub fn build_streams(s: &TpShape, cfg: &Config, layers: &[LayerMats], lm: Mat, plan: &[i32]) -> (Vec<u8>, Vec<u64>) {
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity((layers.len() + 1) * s.nblk);
    for m in layers {
        parts.extend((0..s.nblk).into_par_iter().map(|b| layer_stream(s, cfg, m, plan, b)).collect::<Vec<_>>());
    }
    parts.extend((0..s.nblk).into_par_iter().map(|b| lm_stream(s, lm, plan, b)).collect::<Vec<_>>());
    let total: usize = parts.iter().map(|p| p.len().div_ceil(128) * 128).sum();
    let mut bytes = Vec::with_capacity(total);
    let mut soff = Vec::with_capacity(parts.len());
    for p in parts {
        soff.push(bytes.len() as u64);
        bytes.extend_from_slice(&p);
        bytes.resize(bytes.len().div_ceil(128) * 128, 0);
    }
    (bytes, soff)
}

/// Dynamic shared memory of a block with `nslots` ring slots (kernels/tp.cu `tp_layout`).
pub fn smem_bytes(s: &TpShape, nslots: usize, hmax: usize, lmax: usize) -> usize {
    let r = |b: usize| b.div_ceil(16) * 16;
    nslots * SLOT
        + r(s.hidden * 4)
        + r(s.kph.max(s.kpo) * 2)
        + r(2 * CLUSTER * s.xbs * 4)
        + 2048 * 4
        + r(s.qvn * 4)
        + r(s.natt * 4)
        + 2 * r(hmax * 4)
        + r(hmax * 2)
        + r(s.p * 4)
        + r(2 * 32 * (s.hd + 8) * 2)
        + 64 * 4
        + 2 * r(s.hidden * 4)
        + r(s.nqmax * 4)
        + r(s.p * 4)
        + r(hmax * 4)
        + r(2 * s.p * 4)
        + r(lmax * 4)
        + r(s.hd * 4)
        + 2 * r(nslots * 8)
        + 16
}

/// Most lm_head rows a block multiplies (16 x its most tiles): the kernel's buffer of their scales.
pub fn lmax(plan: &[i32]) -> usize {
    16 * plan.chunks(8).map(|c| c[3] as usize).max().unwrap_or(0).max(1)
}

/// Floats of the kernel's per-block row buffers (`hmax`): a batch of q/k/v or gate/up rows, P outputs.
pub fn hmax(s: &TpShape, plan: &[i32]) -> usize {
    let most_units = plan.chunks(8).map(|c| c[1] as usize).max().unwrap_or(0);
    (16 * most_units).max(s.nqmax).max(s.p).max(16).div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::pack::e4m3_to_f32;

    fn cfg(hidden: usize, inter: usize, heads: usize, kvh: usize, vocab: usize) -> Config {
        let json = format!(
            r#"{{"hidden_size": {hidden}, "intermediate_size": {inter}, "num_hidden_layers": 1,
                "num_attention_heads": {heads}, "num_key_value_heads": {kvh}, "vocab_size": {vocab},
                "max_position_embeddings": 64, "rms_norm_eps": 1e-5}}"#
        );
        Config::from_json_str(&json).unwrap()
    }

    /// A pseudo-random FP8 matrix (finite codes only).
    fn mat(n: usize, kp: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n * kp)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let b = (x >> 8) as u8;
                if b & 0x7f == 0x7f {
                    b & 0xf0
                } else {
                    b
                }
            })
            .collect()
    }

    /// The kernel's column-parallel GEMV over packed tiles, done on the host: lane L's bytes in a pair are
    /// A[g][2q..], A[g + 8][2q..], A[g][2q + 8..], A[g + 8][2q + 8..] at k = 32 pair + 16 half.
    fn tiles_times(packed: &[u8], ntiles: usize, kp: usize, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0f32; ntiles * 16];
        for t in 0..ntiles {
            for pair in 0..kp / 32 {
                let base = (t * kp / 32 + pair) * PAIR;
                for lane in 0..32 {
                    let (g, q) = (lane / 4, lane % 4);
                    for half in 0..2 {
                        let w = &packed[base + lane * 16 + half * 8..][..8];
                        let kb = 32 * pair + 16 * half + 2 * q;
                        let xv = |k: usize| x.get(k).copied().unwrap_or(0.0);
                        y[t * 16 + g] += e4m3_to_f32(w[0]) * xv(kb) + e4m3_to_f32(w[1]) * xv(kb + 1);
                        y[t * 16 + g + 8] += e4m3_to_f32(w[2]) * xv(kb) + e4m3_to_f32(w[3]) * xv(kb + 1);
                        y[t * 16 + g] += e4m3_to_f32(w[4]) * xv(kb + 8) + e4m3_to_f32(w[5]) * xv(kb + 9);
                        y[t * 16 + g + 8] += e4m3_to_f32(w[6]) * xv(kb + 8) + e4m3_to_f32(w[7]) * xv(kb + 9);
                    }
                }
            }
        }
        y
    }

    fn dot(m: Mat, row: usize, c0: usize, x: &[f32]) -> f32 {
        x.iter().enumerate().map(|(k, &v)| e4m3_to_f32(m.at(row, c0 + k)) * v).sum()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn packed_tiles_multiply_like_their_rows() {
        let (n, kp) = (37, 256);
        let w = mat(n, kp, 3);
        let m = Mat { w: &w, n, kp };
        let x: Vec<f32> = (0..200).map(|i| ((i * 37 % 19) as f32 - 9.0) / 8.0).collect();
        // Rows in an odd order with a hole, columns 24.. of the source, 200 of them valid, padded to 256.
        let rows: [Option<usize>; 16] = std::array::from_fn(|i| if i == 5 { None } else { Some((i * 7 + 3) % n) });
        let mut out = Vec::new();
        pack_tile(&mut out, m, &rows, 24, 200, 256);
        assert_eq!(out.len(), 16 * 256);
        let y = tiles_times(&out, 1, 256, &x);
        for (i, r) in rows.iter().enumerate() {
            let want = r.map_or(0.0, |r| dot(m, r, 24, &x[..200.min(kp - 24)]));
            assert!(close(y[i], want), "row {i}: {} vs {want}", y[i]);
        }
    }

    #[test]
    fn packed_down_multiplies_like_its_columns() {
        let (hidden, inter) = (40, 29);
        let kp = 128;
        let w = mat(hidden, kp, 5);
        let m = Mat { w: &w, n: hidden, kp };
        let (u0, nu) = (1, 3); // indices 8..32, of which 8..29 exist
        let mut out = Vec::new();
        pack_down(&mut out, m, hidden, inter, u0, nu);
        assert_eq!(out.len(), hidden.div_ceil(16) * nu * K8);
        let h: Vec<f32> = (0..nu * 8).map(|i| (i as f32 - 11.0) / 4.0).collect();
        // The kernel: warp-owned row tiles, m16n8k8 per unit, column 0 of D.
        let mut y = vec![0f32; hidden.div_ceil(16) * 16];
        for rt in 0..hidden.div_ceil(16) {
            for u in 0..nu {
                let tile = &out[(u * hidden.div_ceil(16) + rt) * K8..][..K8];
                for lane in 0..32 {
                    let (g, q) = (lane / 4, lane % 4);
                    let b = &tile[lane * 4..][..4];
                    let (h0, h1) = (h[u * 8 + 2 * q], h[u * 8 + 2 * q + 1]);
                    y[rt * 16 + g] += e4m3_to_f32(b[0]) * h0 + e4m3_to_f32(b[1]) * h1;
                    y[rt * 16 + g + 8] += e4m3_to_f32(b[2]) * h0 + e4m3_to_f32(b[3]) * h1;
                }
            }
        }
        for (row, &got) in y.iter().enumerate() {
            let want: f32 = if row < hidden {
                (0..nu * 8).filter(|&i| u0 * 8 + i < inter).map(|i| e4m3_to_f32(m.at(row, u0 * 8 + i)) * h[i]).sum()
            } else {
                0.0
            };
            assert!(close(got, want), "row {row}: {got} vs {want}");
        }
    }

    #[test]
    fn units_are_dealt_once_and_balance_the_bytes() {
        let fixed: Vec<usize> = (0..112).map(|b| if b < 64 { 100_000 + (b % 3) * 32_768 } else { 0 }).collect();
        let parts = balance_units(&fixed, 704, 49_152);
        assert_eq!(parts.iter().map(|p| p.1).sum::<usize>(), 704);
        let mut next = 0;
        for &(u0, nu) in &parts {
            assert_eq!(u0, next);
            next += nu;
        }
        let loads: Vec<usize> = parts.iter().zip(&fixed).map(|(p, f)| f + p.1 * 49_152).collect();
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(hi - lo <= 49_152, "loads spread from {lo} to {hi}");
        // More blocks than units: some get none.
        let few = balance_units(&[0; 8], 3, 10);
        assert_eq!(few.iter().map(|p| p.1).sum::<usize>(), 3);
    }

    #[test]
    fn tinyllama_shape_splits_evenly_on_seven_clusters() {
        let c = cfg(2048, 5632, 32, 4, 32000);
        let s = TpShape::new(&c, 7).unwrap();
        assert_eq!((s.nblk, s.g, s.hd, s.p, s.tq, s.d, s.units), (112, 8, 64, 128, 40, 32, 704));
        // Every q/k/v tile of a group goes to exactly one block of its cluster.
        let mut seen = vec![0; s.tq];
        for b in 0..CLUSTER {
            let (t0, nt) = s.qkv_tiles(b);
            (t0..t0 + nt).for_each(|t| seen[t] += 1);
        }
        assert!(seen.iter().all(|&n| n == 1));
        let plan = block_plan(&s, 4);
        let lm: usize = plan.chunks(8).map(|c| c[3] as usize).sum();
        assert_eq!(lm, 2000);
        // Streams: the attention blocks' extra bytes are balanced by fewer MLP units.
        let bytes: Vec<usize> =
            (0..s.nblk).map(|b| s.attn_bytes(b, 4) + plan[b * 8 + 1] as usize * s.unit_bytes()).collect();
        let (lo, hi) = (bytes.iter().min().unwrap(), bytes.iter().max().unwrap());
        assert!(hi - lo <= s.unit_bytes(), "per-block bytes from {lo} to {hi}");
        assert!(TpShape::new(&c, 3).is_err(), "fewer clusters than KV heads");
        assert!(TpShape::new(&cfg(2048, 5632, 64, 4, 32000), 7).is_err(), "16 query heads per KV head");
    }

    #[test]
    fn a_layer_stream_holds_the_blocks_rows() {
        // A small model: every matrix through layer_stream, then multiplied back as the kernel reads it.
        let c = cfg(256, 200, 8, 2, 100);
        let s = TpShape::new(&c, 2).unwrap();
        let (h, kvh, hd) = (8, 2, 32);
        let qkv_n = (h + 2 * kvh) * hd;
        let (wq, wo, wg, wd) = (mat(qkv_n, 256, 1), mat(256, 256, 2), mat(400, 256, 3), mat(256, 256, 4));
        let m = LayerMats {
            qkv: Mat { w: &wq, n: qkv_n, kp: 256 },
            o: Mat { w: &wo, n: 256, kp: 256 },
            gate_up: Mat { w: &wg, n: 400, kp: 256 },
            down: Mat { w: &wd, n: 256, kp: 256 },
        };
        let plan = block_plan(&s, kvh);
        let x: Vec<f32> = (0..256).map(|i| ((i * 13 % 7) as f32 - 3.0) / 2.0).collect();
        for b in [0, 5, CLUSTER + 3, CLUSTER + 15] {
            let st = layer_stream(&s, &c, &m, &plan, b);
            let (grp, r) = (b / CLUSTER, b % CLUSTER);
            let (t0, nt) = s.qkv_tiles(b);
            let q = tiles_times(&st, nt, s.kph, &x);
            for (i, &got) in q.iter().enumerate() {
                let gi = t0 * 16 + i;
                let want = if gi < s.qvn { dot(m.qkv, qkv_row(gi, grp, s.g, h, kvh, hd), 0, &x) } else { 0.0 };
                assert!(close(got, want), "block {b} q/k/v row {gi}");
            }
            let o_at = nt * s.kph * 16;
            let o = tiles_times(&st[o_at..], s.pt, s.kpo, &x[..s.natt]);
            for (i, &got) in o.iter().take(s.p).enumerate() {
                let want = dot(m.o, r * s.p + i, grp * s.natt, &x[..s.natt]);
                assert!(close(got, want), "block {b} o row {i}");
            }
            let (u0, nu) = (plan[b * 8] as usize, plan[b * 8 + 1] as usize);
            let gu_at = o_at + s.pt * s.kpo * 16;
            let gu = tiles_times(&st[gu_at..], nu, s.kph, &x);
            for u in 0..nu {
                for i in 0..16 {
                    let j = (u0 + u) * 8 + (i & 7);
                    let want = if j < s.inter { dot(m.gate_up, 2 * j + (i >> 3), 0, &x) } else { 0.0 };
                    assert!(close(gu[u * 16 + i], want), "block {b} gate/up unit {u} row {i}");
                }
            }
            assert_eq!(st.len(), gu_at + nu * s.kph * 16 + s.ht * nu * K8);
        }
    }
}
