//! The CPU reference backend: HF `LlamaForCausalLM` in f32, multithreaded with rayon.
//! It is the numerics reference for every other backend.

use super::linalg::{dot, linear, rmsnorm, rope_apply, rope_cos_sin, silu_mul};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::loader::TensorStore;
use crate::names;
use rayon::prelude::*;

struct Layer {
    attn_norm: Vec<f32>, // [hidden]
    wq: Vec<f32>,        // [heads*head_dim, hidden]
    wk: Vec<f32>,        // [kv_heads*head_dim, hidden]
    wv: Vec<f32>,        // [kv_heads*head_dim, hidden]
    wo: Vec<f32>,        // [hidden, heads*head_dim]
    ffn_norm: Vec<f32>,  // [hidden]
    w_gate: Vec<f32>,    // [intermediate, hidden]
    w_up: Vec<f32>,      // [intermediate, hidden]
    w_down: Vec<f32>,    // [hidden, intermediate]
}

/// Read-only f32 weights, shared by every sequence.
pub struct CpuModel {
    cfg: Config,
    inv_freq: Vec<f32>,
    embed: Vec<f32>, // [vocab, hidden]
    layers: Vec<Layer>,
    norm: Vec<f32>,            // [hidden]
    lm_head: Option<Vec<f32>>, // [vocab, hidden]; None = tied to `embed`
}

/// Per-sequence KV cache; grows with the sequence up to `max_position_embeddings`.
pub struct CpuCache {
    k: Vec<Vec<f32>>, // per layer: [len, kv_heads*head_dim]
    v: Vec<Vec<f32>>,
    len: usize,
}

impl CpuCache {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl CpuModel {
    /// Loads and checks every tensor (presence, shape, dtype) and converts it to f32.
    pub fn load(cfg: &Config, store: &TensorStore, tied: bool) -> Result<CpuModel> {
        let h = cfg.hidden_size;
        let q_dim = cfg.num_heads * cfg.head_dim;
        let kv_dim = cfg.num_kv_heads * cfg.head_dim;
        let inter = cfg.intermediate_size;
        let layers = (0..cfg.num_layers)
            .into_par_iter()
            .map(|i| {
                let n = |s: &str| names::layer(i, s);
                Ok(Layer {
                    attn_norm: store.f32(&n(names::ATTN_NORM), &[h])?,
                    wq: store.f32(&n(names::Q), &[q_dim, h])?,
                    wk: store.f32(&n(names::K), &[kv_dim, h])?,
                    wv: store.f32(&n(names::V), &[kv_dim, h])?,
                    wo: store.f32(&n(names::O), &[h, q_dim])?,
                    ffn_norm: store.f32(&n(names::FFN_NORM), &[h])?,
                    w_gate: store.f32(&n(names::GATE), &[inter, h])?,
                    w_up: store.f32(&n(names::UP), &[inter, h])?,
                    w_down: store.f32(&n(names::DOWN), &[h, inter])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CpuModel {
            cfg: cfg.clone(),
            inv_freq: cfg.rope_inv_freq(),
            embed: store.f32(names::EMBED, &[cfg.vocab_size, h])?,
            layers,
            norm: store.f32(names::NORM, &[h])?,
            lm_head: if tied { None } else { Some(store.f32(names::LM_HEAD, &[cfg.vocab_size, h])?) },
        })
    }

    pub fn new_cache(&self) -> CpuCache {
        CpuCache { k: vec![Vec::new(); self.cfg.num_layers], v: vec![Vec::new(); self.cfg.num_layers], len: 0 }
    }

    /// Runs `tokens` (one or many: a prompt is prefilled in one batched pass) at positions
    /// `cache.len..`, appends their K/V to the cache, and returns the logits of the last position.
    pub fn forward(&self, cache: &mut CpuCache, tokens: &[u32]) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let t = tokens.len();
        if t == 0 {
            return Err(Error::InvalidOption("forward needs at least one token".into()));
        }
        if cache.len + t > cfg.max_position_embeddings {
            return Err(Error::PromptTooLong(format!(
                "{} cached + {t} new positions exceed the context of {} positions",
                cache.len, cfg.max_position_embeddings
            )));
        }
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_heads, cfg.num_kv_heads);
        let (q_dim, kv_dim, inter) = (nh * hd, nkv * hd, cfg.intermediate_size);
        let eps = cfg.rms_norm_eps as f32;
        let p0 = cache.len;

        // x = embed_tokens(ids)        // [t, hidden]
        let mut x = vec![0f32; t * h];
        for (i, &id) in tokens.iter().enumerate() {
            let id = id as usize;
            if id >= cfg.vocab_size {
                return Err(Error::TokenOutOfRange(format!(
                    "token id {id} is outside the vocabulary (size {})",
                    cfg.vocab_size
                )));
            }
            x[i * h..(i + 1) * h].copy_from_slice(&self.embed[id * h..(id + 1) * h]);
        }
        // RoPE tables for the new positions.  // [t, head_dim/2]
        let half = hd / 2;
        let mut cos = vec![0f32; t * half];
        let mut sin = vec![0f32; t * half];
        for i in 0..t {
            rope_cos_sin(
                p0 + i,
                &self.inv_freq,
                &mut cos[i * half..(i + 1) * half],
                &mut sin[i * half..(i + 1) * half],
            );
        }

        let mut xn = vec![0f32; t * h];
        let mut q = vec![0f32; t * q_dim];
        let mut k = vec![0f32; t * kv_dim];
        let mut v = vec![0f32; t * kv_dim];
        let mut attn = vec![0f32; t * q_dim];
        let mut o = vec![0f32; t * h];
        let mut g = vec![0f32; t * inter];
        let mut u = vec![0f32; t * inter];
        let scale = 1.0 / (hd as f32).sqrt();
        let group = nh / nkv;

        for (li, l) in self.layers.iter().enumerate() {
            // h = x + o_proj(attn(rope(q_proj(norm(x))), rope(k_proj(..)), v_proj(..)))
            rmsnorm(&x, &l.attn_norm, eps, &mut xn);
            linear(&xn, t, h, &l.wq, q_dim, &mut q);
            linear(&xn, t, h, &l.wk, kv_dim, &mut k);
            linear(&xn, t, h, &l.wv, kv_dim, &mut v);
            for i in 0..t {
                let (c, s) = (&cos[i * half..(i + 1) * half], &sin[i * half..(i + 1) * half]);
                for hq in q[i * q_dim..(i + 1) * q_dim].chunks_exact_mut(hd) {
                    rope_apply(hq, c, s);
                }
                for hk in k[i * kv_dim..(i + 1) * kv_dim].chunks_exact_mut(hd) {
                    rope_apply(hk, c, s);
                }
            }
            let kc = &mut cache.k[li];
            let vc = &mut cache.v[li];
            kc.truncate(p0 * kv_dim);
            vc.truncate(p0 * kv_dim);
            kc.extend_from_slice(&k);
            vc.extend_from_slice(&v);
            let (kc, vc) = (&*kc, &*vc);
            // softmax(q·kᵀ · scale, causal) · v, per (token, head).      // GQA: head h reads kv head h / group
            attn.par_chunks_mut(hd).enumerate().for_each(|(idx, out)| {
                let (i, head) = (idx / nh, idx % nh);
                let kvh = head / group;
                let qv = &q[i * q_dim + head * hd..i * q_dim + (head + 1) * hd];
                let n_ctx = p0 + i + 1;
                let mut scores: Vec<f32> = (0..n_ctx)
                    .map(|j| dot(qv, &kc[j * kv_dim + kvh * hd..j * kv_dim + (kvh + 1) * hd]) * scale)
                    .collect();
                let m = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - m).exp();
                    sum += *s;
                }
                out.fill(0.0);
                for (j, s) in scores.iter().enumerate() {
                    let p = s / sum;
                    let vr = &vc[j * kv_dim + kvh * hd..j * kv_dim + (kvh + 1) * hd];
                    for (a, &b) in out.iter_mut().zip(vr) {
                        *a += p * b;
                    }
                }
            });
            linear(&attn, t, q_dim, &l.wo, h, &mut o);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
            // x = h + down_proj(silu(gate_proj(norm(h))) * up_proj(norm(h)))
            rmsnorm(&x, &l.ffn_norm, eps, &mut xn);
            linear(&xn, t, h, &l.w_gate, inter, &mut g);
            linear(&xn, t, h, &l.w_up, inter, &mut u);
            silu_mul(&mut g, &u);
            linear(&g, t, inter, &l.w_down, h, &mut o);
            for (a, b) in x.iter_mut().zip(&o) {
                *a += b;
            }
        }
        cache.len = p0 + t;
        // logits = lm_head(norm(x[last]))
        let last = &x[(t - 1) * h..t * h];
        let mut xl = vec![0f32; h];
        rmsnorm(last, &self.norm, eps, &mut xl);
        let head = self.lm_head.as_deref().unwrap_or(&self.embed);
        let mut logits = vec![0f32; cfg.vocab_size];
        linear(&xl, 1, h, head, cfg.vocab_size, &mut logits);
        Ok(logits)
    }
}
