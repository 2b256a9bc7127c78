//! f32 building blocks of the CPU path: dot products, `y = x · Wᵀ`, RMSNorm, RoPE, SiLU.
//! Row-parallel with rayon; each output element is summed in a fixed order, so results do not
//! depend on the number of threads or on what else runs at the same time.

use rayon::prelude::*;

/// Dot product with 8 independent accumulators (vectorises; fixed summation order).
#[inline]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY: every load reads 8 floats at offsets i..i+8 (or i+8..i+16) below n.
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
            acc1 =
                _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i + 8)), _mm256_loadu_ps(b.as_ptr().add(i + 8)), acc1);
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)), acc0);
            i += 8;
        }
        let acc = _mm256_add_ps(acc0, acc1);
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }
}

/// `Σ a_i b_i` in f32.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// `y[t, n] = Σ_k x[t, k] · w[n, k]` — a PyTorch `nn.Linear` without bias.
/// `x`: [t, k], `w`: [n, k] row-major, `y`: [t, n].
pub fn linear(x: &[f32], t: usize, k: usize, w: &[f32], n: usize, y: &mut [f32]) {
    debug_assert_eq!(x.len(), t * k);
    debug_assert_eq!(w.len(), n * k);
    debug_assert_eq!(y.len(), t * n);
    if t == 1 {
        // GEMV: rows of W in parallel, 16 rows a task.
        y.par_chunks_mut(16).enumerate().for_each(|(c, ys)| {
            for (j, yj) in ys.iter_mut().enumerate() {
                let row = c * 16 + j;
                *yj = dot(x, &w[row * k..(row + 1) * k]);
            }
        });
        return;
    }
    // GEMM: yᵀ[n, t] = W[n, k] · xᵀ, computed in row blocks of W (each block's output is contiguous),
    // then transposed into y.
    let threads = rayon::current_num_threads().max(1);
    let block = n.div_ceil(threads * 4).clamp(32, 512);
    let mut yt = vec![0f32; n * t];
    yt.par_chunks_mut(block * t).enumerate().for_each(|(b, out)| {
        let rows = out.len() / t;
        let wb = &w[b * block * k..(b * block + rows) * k];
        // SAFETY: pointers and strides describe in-bounds matrices: A = wb [rows×k], B = xᵀ [k×t]
        // (element (kk, tt) at x[tt*k + kk]), C = out [rows×t].
        unsafe {
            matrixmultiply::sgemm(
                rows,
                k,
                t,
                1.0,
                wb.as_ptr(),
                k as isize,
                1,
                x.as_ptr(),
                1,
                k as isize,
                0.0,
                out.as_mut_ptr(),
                t as isize,
                1,
            );
        }
    });
    for i in 0..t {
        for j in 0..n {
            y[i * n + j] = yt[j * t + i];
        }
    }
}

/// HF `LlamaRMSNorm`: `w * (x * rsqrt(mean(x²) + eps))`, per row of `dim`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let dim = w.len();
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let ss = xr.iter().map(|v| v * v).sum::<f32>() / dim as f32;
        let r = 1.0 / (ss + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = g * (v * r);
        }
    }
}

/// cos/sin for one position: `freq_i = pos · inv_freq_i` in f32 (as HF computes it), then cos/sin.
pub fn rope_cos_sin(pos: usize, inv_freq: &[f32], cos: &mut [f32], sin: &mut [f32]) {
    for (i, &f) in inv_freq.iter().enumerate() {
        let a = (pos as f32) * f;
        cos[i] = (a as f64).cos() as f32;
        sin[i] = (a as f64).sin() as f32;
    }
}

/// RoPE, half-rotation layout (HF `rotate_half`), in place on one head vector of `head_dim`:
/// `out[i] = x[i]·cos_i − x[i+d/2]·sin_i`, `out[i+d/2] = x[i+d/2]·cos_i + x[i]·sin_i`.
/// Numeric trap: llama.cpp/llama2.c use interleaved pairs (2i, 2i+1); HF checkpoints do not.
pub fn rope_apply(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    for i in 0..half {
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i] + a * sin[i];
    }
}

/// `silu(g) * u`, in place into `g`.
pub fn silu_mul(g: &mut [f32], u: &[f32]) {
    for (a, &b) in g.iter_mut().zip(u) {
        let s = *a / (1.0 + (-*a).exp());
        *a = s * b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    #[test]
    fn linear_matches_f64_reference_for_gemv_and_gemm() {
        let mut s = 7u64;
        for (t, k, n) in [(1, 67, 45), (5, 64, 130), (9, 33, 1000), (1, 1024, 3)] {
            let x: Vec<f32> = (0..t * k).map(|_| lcg(&mut s)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| lcg(&mut s)).collect();
            let mut y = vec![f32::NAN; t * n];
            linear(&x, t, k, &w, n, &mut y);
            for i in 0..t {
                for j in 0..n {
                    let r: f64 = (0..k).map(|q| x[i * k + q] as f64 * w[j * k + q] as f64).sum();
                    assert!((y[i * n + j] as f64 - r).abs() < 1e-4, "t{t} k{k} n{n}: {} vs {r}", y[i * n + j]);
                }
            }
        }
    }

    #[test]
    fn rope_rotates_pairs_half_apart() {
        // One pair (d = 2), angle π/2: (1, 0) → (0, 1).
        let mut x = [1.0f32, 0.0];
        rope_apply(&mut x, &[0.0], &[1.0]);
        assert!((x[0] - 0.0).abs() < 1e-7 && (x[1] - 1.0).abs() < 1e-7);
    }

    #[test]
    fn rmsnorm_worked_example() {
        // x = [3, 4]: mean(x²) = 12.5, rsqrt ≈ 0.282843; w = [1, 2] → [0.848528, 2.262742].
        let mut o = [0f32; 2];
        rmsnorm(&[3.0, 4.0], &[1.0, 2.0], 0.0, &mut o);
        assert!((o[0] - 0.848_528_1).abs() < 1e-6 && (o[1] - 2.262_741_7).abs() < 1e-6);
    }
}
