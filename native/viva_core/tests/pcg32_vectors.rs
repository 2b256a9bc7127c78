//! `test/vectors/pcg32.json`: the PCG32 stream and sampler draws produced by this (Rust) side, checked
//! in so the pure-Erlang implementation is held to the same numbers bit for bit.
//! Regenerate with `VIVA_REGEN_VECTORS=1 cargo test --test pcg32_vectors`.

use rand_core::RngCore;
use serde_json::{json, Value};
use std::path::PathBuf;
use viva_core::sampler::{penalize, rng, sample, sample_f64, uniform, History, Penalties, SamplerOpts};

fn vectors() -> Value {
    let seeds: [u64; 6] = [0, 1, 42, 1234567890123, 1 << 63, u64::MAX];
    let streams: Vec<Value> = seeds
        .iter()
        .map(|&s| {
            let mut r = rng(s);
            let u32s: Vec<u32> = (0..8).map(|_| r.next_u32()).collect();
            // u = (next_u32 >> 8) / 2^24, stored as its exact numerator (JSON floats need not round-trip).
            let mut r = rng(s);
            let us: Vec<u64> = (0..4).map(|_| (uniform(&mut r) * 16_777_216.0) as u64).collect();
            json!({"seed": s.to_string(), "next_u32": u32s, "uniform_times_2_24": us})
        })
        .collect();
    // A fixed logit vector and several sampler settings: the tokens drawn for 16 steps.
    let logits: Vec<f32> = (0..64).map(|i| (((i * 37 + 11) % 29) as f32 - 14.0) * 0.25).collect();
    let settings = [
        (1.0, 0, 1.0, 0.0),
        (0.7, 0, 0.9, 0.0),
        (1.3, 8, 1.0, 0.0),
        (0.5, 5, 0.8, 0.0),
        (2.0, 0, 0.5, 0.0),
        (1.0, 0, 1.0, 0.1),
        (1.5, 12, 0.95, 0.35),
    ];
    let mut draws: Vec<Value> = Vec::new();
    for &(t, k, p, m) in &settings {
        for &s in &seeds {
            let opts = SamplerOpts { temperature: t, top_k: k, top_p: p, min_p: m };
            let mut r = rng(s);
            let ids: Vec<u32> = (0..16).map(|_| sample(&logits, &opts, &mut r)).collect();
            let mut d = json!({"seed": s.to_string(), "temperature": t, "top_k": k, "top_p": p, "tokens": ids});
            if m > 0.0 {
                d["min_p"] = json!(m);
            }
            draws.push(d);
        }
    }
    // Penalised generation on the same logits: 16 steps, each drawn after the penalties of the history so far
    // (the prompt, and every id drawn before), as the generate loops do.
    let prompt: [u32; 5] = [3, 17, 17, 40, 63];
    let psettings = [
        (0.0, 0, 1.0, 0.0, 1.3, 0.0, 0.0),
        (0.0, 0, 1.0, 0.0, 1.0, 0.4, 0.3),
        (0.8, 0, 0.95, 0.0, 1.2, 0.5, 0.1),
        (1.1, 10, 1.0, 0.05, 0.8, -0.5, 0.2),
    ];
    let mut pdraws: Vec<Value> = Vec::new();
    for &(t, k, p, m, rep, pres, freq) in &psettings {
        for &s in &seeds[..3] {
            let opts = SamplerOpts { temperature: t, top_k: k, top_p: p, min_p: m };
            let pen = Penalties { repetition: rep, presence: pres, frequency: freq };
            let mut h = History::new(logits.len(), &prompt);
            let mut r = rng(s);
            let ids: Vec<u32> = (0..16)
                .map(|_| {
                    let id = sample_f64(&penalize(&logits, &pen, &h), &opts, &mut r);
                    h.push(id);
                    id
                })
                .collect();
            pdraws.push(json!({"seed": s.to_string(), "temperature": t, "top_k": k, "top_p": p, "min_p": m,
                "repetition_penalty": rep, "presence_penalty": pres, "frequency_penalty": freq, "tokens": ids}));
        }
    }
    json!({"generated_by": "native/viva_core/tests/pcg32_vectors.rs", "stream": 0xa02bdbf7bb3c0a7u64.to_string(),
           "streams": streams, "sampler_logits": logits, "sampler_draws": draws,
           "penalty_prompt": prompt, "penalised_draws": pdraws})
}

#[test]
fn checked_in_vectors_equal_the_rust_implementation() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/vectors/pcg32.json");
    let want = vectors();
    if std::env::var("VIVA_REGEN_VECTORS").is_ok() {
        std::fs::write(&path, serde_json::to_string_pretty(&want).unwrap() + "\n").unwrap();
    }
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(got, want);
}
