//! Host-side weight packing for the CUDA backend: bf16 rows, or FP8 E4M3 rows with one f32 scale per
//! block of `block` elements of a row (the W8A16 format of DESIGN.md's numerics contract).
//!
//! Every packed matrix is row-major `[n, kp]` with `kp = k` rounded up to a multiple of [`K_ALIGN`]
//! (zero padding), so that each row starts 16-byte aligned and every supported block size divides it.

use rayon::prelude::*;

/// Row length alignment (elements) of packed matrices; also the largest supported FP8 block.
pub const K_ALIGN: usize = 128;

/// FP8 block sizes the kernels support (a block must hold whole 16-byte chunks and divide `K_ALIGN`), and
/// [`FP8_ROW`].
pub const FP8_BLOCKS: [usize; 5] = [16, 32, 64, 128, FP8_ROW];

/// The FP8 "block" of one scale per row (`VIVA_TENSOR_FP8_BLOCK=row`): a matrix's block is then its padded row,
/// `kp` ([`fp8_block_of`]).
pub const FP8_ROW: usize = 0;

/// The block (elements) a matrix of padded row length `kp` is packed with for the FP8 block setting `block`.
pub fn fp8_block_of(block: usize, kp: usize) -> usize {
    if block == FP8_ROW {
        kp
    } else {
        block
    }
}

/// Largest finite E4M3 value.
pub const E4M3_MAX: f32 = 448.0;

/// `k` rounded up to [`K_ALIGN`].
pub fn padded(k: usize) -> usize {
    k.div_ceil(K_ALIGN) * K_ALIGN
}

/// f32 → E4M3 ("e4m3fn": bias 7, no infinities, max 448), round to nearest even, saturating.
/// Values below 2^-6 are subnormal (steps of 2^-9); NaN maps to the NaN code 0x7f.
pub fn f32_to_e4m3(x: f32) -> u8 {
    if x.is_nan() {
        return 0x7f;
    }
    let sign = if x.is_sign_negative() { 0x80u8 } else { 0 };
    let a = x.abs();
    if a >= E4M3_MAX {
        return sign | 0x7e;
    }
    // Exponent of the grid the value falls on: normals have 3 fraction bits (step 2^(e-3));
    // the subnormal range shares e = -6's step 2^-9.
    let e = if a < f32::MIN_POSITIVE { -6 } else { (a.log2().floor() as i32).max(-6) };
    let step = (2f32).powi(e - 3);
    let n = (a / step).round_ties_even() as i32; // in [0, 16]
                                                 // n = 16 carries into the next exponent by itself: ((e + 7) << 3) + 8 == (e + 8) << 3.
    let bits = (((e + 7) << 3) + n - 8).clamp(0, 0x7e) as u8;
    sign | bits
}

/// E4M3 → f32 (exact).
pub fn e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let e = ((b >> 3) & 0xf) as i32;
    let m = (b & 7) as f32;
    if e == 0xf && b & 7 == 7 {
        return f32::NAN;
    }
    if e == 0 {
        sign * m * (2f32).powi(-9)
    } else {
        sign * (1.0 + m / 8.0) * (2f32).powi(e - 7)
    }
}

/// A matrix packed for the device: raw bytes `[n, kp]` and, for FP8, scales `[n, kp / block]`.
pub struct Packed {
    pub bytes: Vec<u8>,
    pub scales: Option<Vec<f32>>,
    pub n: usize,
    pub k: usize,
    pub kp: usize,
}

/// Packs a row-major f32 matrix `[n, k]` as bf16 (round to nearest even).
pub fn pack_bf16(w: &[f32], n: usize, k: usize) -> Packed {
    let kp = padded(k);
    let mut bytes = vec![0u8; n * kp * 2];
    bytes.par_chunks_mut(kp * 2).zip(w.par_chunks(k)).for_each(|(out, row)| {
        for (o, &v) in out.chunks_exact_mut(2).zip(row) {
            o.copy_from_slice(&half::bf16::from_f32(v).to_bits().to_le_bytes());
        }
    });
    Packed { bytes, scales: None, n, k, kp }
}

/// Packs a row-major f32 matrix `[n, k]` as E4M3 with one f32 scale per `block` elements ([`FP8_ROW`]: per
/// row): `scale = amax(block) / 448`, `q = e4m3(w / scale)` (an all-zero block gets scale 0).
pub fn pack_fp8(w: &[f32], n: usize, k: usize, block: usize) -> Packed {
    let kp = padded(k);
    let block = fp8_block_of(block, kp);
    let nb = kp / block;
    let mut bytes = vec![0u8; n * kp];
    let mut scales = vec![0f32; n * nb];
    bytes.par_chunks_mut(kp).zip(scales.par_chunks_mut(nb)).zip(w.par_chunks(k)).for_each(|((out, sc), row)| {
        for (b, s) in sc.iter_mut().enumerate() {
            let lo = (b * block).min(k);
            let hi = ((b + 1) * block).min(k);
            let vals = &row[lo..hi];
            let amax = vals.iter().fold(0f32, |m, v| m.max(v.abs()));
            if amax == 0.0 || !amax.is_finite() {
                *s = if amax.is_finite() { 0.0 } else { f32::NAN };
                continue;
            }
            let scale = amax / E4M3_MAX;
            *s = scale;
            for (o, &v) in out[lo..hi].iter_mut().zip(vals) {
                *o = f32_to_e4m3(v / scale);
            }
        }
    });
    Packed { bytes, scales: Some(scales), n, k, kp }
}

/// The scales of an FP8 matrix (`[n, kp / block]`, block 64 or 128) in the order the tensor-core GEMV's bulk-copy
/// ring reads them (kernels/gemv.cu, v13): one record per piece (tile of 16 rows x 128 bytes of K, tile-major),
/// for g in 0..8 the scales of rows g and g + 8 of the tile, both blocks of the piece for block 64
/// (`[g][row g s0, row g s1, row g+8 s0, row g+8 s1]`, 128 bytes) or its one block for 128 (`[g][row g, row g+8]`,
/// 64 bytes). Rows past `n` repeat row `n - 1`, as the kernel's weight rows do.
pub fn pack_tc_scales(scales: &[f32], n: usize, kp: usize, block: usize) -> Vec<f32> {
    let (nb, nps) = (kp / block, kp / 128);
    let per = 128 / block; // scale blocks per piece
    let tiles = n.div_ceil(16);
    let mut out = Vec::with_capacity(tiles * nps * 16 * per);
    for t in 0..tiles {
        for pc in 0..nps {
            for g in 0..8 {
                for r in [t * 16 + g, t * 16 + g + 8] {
                    let row = &scales[r.min(n - 1) * nb..][..nb];
                    out.extend_from_slice(&row[pc * per..][..per]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_scales_follow_the_pieces_of_each_tile() {
        // 20 rows (a partial second tile), kp 256: 2 pieces per tile; scale of (row, block) = 1000 row + block.
        for block in [64usize, 128] {
            let (n, kp) = (20usize, 256usize);
            let nb = kp / block;
            let s: Vec<f32> = (0..n * nb).map(|i| (1000 * (i / nb) + i % nb) as f32).collect();
            let p = pack_tc_scales(&s, n, kp, block);
            let per = 128 / block;
            assert_eq!(p.len(), 2 * 2 * 16 * per);
            // Tile 1, piece 1, g 3: rows 19 and 27 -> 19 (clamped); blocks 2, 3 (block 64) or 1 (128).
            let rec = &p[((2 + 1) * 16 + 3 * 2) * per..][..2 * per];
            let want: Vec<f32> =
                [19, 19].iter().flat_map(|&r| (0..per).map(move |j| (1000 * r + per + j) as f32)).collect();
            assert_eq!(rec, &want[..], "block {block}");
        }
    }

    #[test]
    fn e4m3_round_trips_every_code_and_rounds_to_nearest_even() {
        for b in 0u8..=255 {
            let v = e4m3_to_f32(b);
            if v.is_nan() {
                continue;
            }
            let back = f32_to_e4m3(v);
            // +0 and -0 are distinct codes; every finite code maps back to itself.
            assert_eq!(back, b, "code {b:#04x} = {v}");
        }
        // Hand-worked: 1.0 = 0x38; 1.0625 lies halfway between 1.0 and 1.125 -> even mantissa (1.0);
        // 1.1875 halfway between 1.125 (m=1) and 1.25 (m=2) -> 1.25; 2^-9 is the smallest subnormal.
        assert_eq!(f32_to_e4m3(1.0), 0x38);
        assert_eq!(f32_to_e4m3(1.0625), 0x38);
        assert_eq!(f32_to_e4m3(1.1875), 0x3a);
        assert_eq!(f32_to_e4m3(2f32.powi(-9)), 0x01);
        assert_eq!(f32_to_e4m3(2f32.powi(-10)), 0x00); // halfway to 0 -> even (0)
        assert_eq!(f32_to_e4m3(1000.0), 0x7e);
        assert_eq!(f32_to_e4m3(-448.0), 0xfe);
        assert_eq!(e4m3_to_f32(0x7e), 448.0);
    }

    #[test]
    fn fp8_blocks_bound_the_relative_error() {
        let n = 3;
        let k = 100; // not a multiple of the block: the padded tail must stay zero
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        for setting in FP8_BLOCKS {
            let p = pack_fp8(&w, n, k, setting);
            let sc = p.scales.as_ref().unwrap(); // ok-panic: test
            assert_eq!(p.kp, 128);
            let block = fp8_block_of(setting, p.kp);
            for r in 0..n {
                for c in 0..p.kp {
                    let q = e4m3_to_f32(p.bytes[r * p.kp + c]) * sc[r * (p.kp / block) + c / block];
                    if c >= k {
                        assert_eq!(q, 0.0);
                        continue;
                    }
                    let v = w[r * k + c];
                    // 3 mantissa bits: relative error <= 2^-4 for normals; subnormals are absolute.
                    let amax = sc[r * (p.kp / block) + c / block] * E4M3_MAX;
                    assert!((q - v).abs() <= v.abs() / 16.0 + amax * 2f32.powi(-9) / E4M3_MAX * 2.0, "{v} -> {q}");
                }
            }
        }
    }

    #[test]
    fn fp8_row_scales_are_one_per_row_and_bound_the_relative_error() {
        // Rows of 300 (kp 384): one scale each, the row's amax / 448; values within 2^-4 relative of the input
        // down to amax 2^-15 (E4M3 normals start at 2^-6 of 448 x 2^-9 steps), as block scales give.
        let (n, k) = (4usize, 300usize);
        let w: Vec<f32> =
            (0..n * k).map(|i| (((i * 7919) % 1000) as f32 / 1000.0 - 0.5) * (1 + i / k) as f32).collect();
        let p = pack_fp8(&w, n, k, FP8_ROW);
        let sc = p.scales.as_ref().unwrap(); // ok-panic: test
        assert_eq!((p.kp, sc.len()), (384, n));
        for r in 0..n {
            let amax = w[r * k..][..k].iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(sc[r], amax / E4M3_MAX);
            for c in 0..p.kp {
                let q = e4m3_to_f32(p.bytes[r * p.kp + c]) * sc[r];
                let v = if c < k { w[r * k + c] } else { 0.0 };
                assert!((q - v).abs() <= v.abs() / 16.0 + sc[r] * 2f32.powi(-9), "row {r} col {c}: {v} -> {q}");
            }
        }
    }
}
