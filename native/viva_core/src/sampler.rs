//! The sampler contract of DESIGN.md / docs/architecture.md, in the exact order of operations the
//! pure-Erlang sampler uses, so both pick the same token bit for bit.

use crate::error::{Error, Result};
use rand_core::RngCore;
use rand_pcg::Pcg32;

/// PCG32 stream constant fixed by the contract.
pub const PCG_STREAM: u64 = 0xa02bdbf7bb3c0a7;

/// Sampling parameters (validated by [`SamplerOpts::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerOpts {
    pub temperature: f64,
    /// 0 = no limit.
    pub top_k: usize,
    pub top_p: f64,
    /// Min-p: after the nucleus, keep only the tokens whose probability is at least `min_p` times the most
    /// likely one's. 0 = off.
    pub min_p: f64,
}

impl SamplerOpts {
    pub fn greedy() -> SamplerOpts {
        SamplerOpts { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0 }
    }

    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(Error::InvalidOption(format!("temperature must be >= 0, got {}", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::InvalidOption(format!("top_p must be in (0, 1], got {}", self.top_p)));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(Error::InvalidOption(format!("min_p must be in [0, 1], got {}", self.min_p)));
        }
        Ok(())
    }
}

/// The seeded RNG of one generation: `Pcg32::new(seed, PCG_STREAM)`.
pub fn rng(seed: u64) -> Pcg32 {
    Pcg32::new(seed, PCG_STREAM)
}

/// `u ∈ [0, 1)` from one `next_u32`: the top 24 bits over 2^24.
pub fn uniform(rng: &mut Pcg32) -> f64 {
    (rng.next_u32() >> 8) as f64 / 16_777_216.0
}

/// Index of the largest logit, the lowest index on ties.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token. `temperature == 0` is argmax with no draw; otherwise exactly one draw.
pub fn sample(logits: &[f32], opts: &SamplerOpts, rng: &mut Pcg32) -> u32 {
    if opts.temperature == 0.0 || logits.is_empty() {
        return argmax(logits);
    }
    let t = opts.temperature;
    // Scaled logits, sorted descending, ties to the lower index.
    // `+ 0.0` turns -0.0 into +0.0 so that `total_cmp` treats them as the tie they are.
    let mut cand: Vec<(f64, u32)> = logits.iter().enumerate().map(|(i, &l)| (l as f64 / t + 0.0, i as u32)).collect();
    let k = if opts.top_k == 0 { cand.len() } else { opts.top_k.min(cand.len()) };
    let by_desc = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k < cand.len() {
        cand.select_nth_unstable_by(k - 1, by_desc);
        cand.truncate(k);
    }
    cand.sort_unstable_by(by_desc);
    // Softmax in sorted order, summed left to right.
    let m = cand[0].0;
    let e: Vec<f64> = cand.iter().map(|c| (c.0 - m).exp()).collect();
    let z: f64 = e.iter().fold(0.0, |acc, x| acc + x);
    let p: Vec<f64> = e.iter().map(|x| x / z).collect();
    // Nucleus: shortest prefix whose running sum reaches top_p.
    let mut keep = p.len();
    let mut run = 0.0;
    for (i, pi) in p.iter().enumerate() {
        run += pi;
        if run >= opts.top_p {
            keep = i + 1;
            break;
        }
    }
    // Min-p: the leading run of the nucleus at or above min_p x the largest probability (never empty: p[0] is
    // the largest and min_p <= 1).
    let floor = opts.min_p * p[0];
    let keep = p[..keep].iter().take_while(|&&pi| pi >= floor).count();
    let zp: f64 = p[..keep].iter().fold(0.0, |acc, x| acc + x);
    let u = uniform(rng);
    let mut c = 0.0;
    for i in 0..keep {
        c += p[i] / zp;
        if c > u {
            return cand[i].1;
        }
    }
    cand[keep - 1].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_stream_matches_contract_vectors() {
        for (seed, want) in [
            (0u64, [3894649422u32, 2055130073, 2315086854]),
            (42, [3270867926, 1795671209, 1924641435]),
            (u64::MAX, [3643879478, 3444271506, 2072954526]),
        ] {
            let mut r = rng(seed);
            let got = [r.next_u32(), r.next_u32(), r.next_u32()];
            assert_eq!(got, want, "seed {seed}");
        }
    }

    #[test]
    fn greedy_is_argmax_with_lowest_index_on_ties() {
        let mut r = rng(1);
        assert_eq!(sample(&[0.5, 2.0, 2.0, -1.0], &SamplerOpts::greedy(), &mut r), 1);
        // No draw was made: the stream is untouched.
        assert_eq!(r.next_u32(), rng(1).next_u32());
    }

    #[test]
    fn hand_worked_top_k_top_p() {
        // logits [1, 2, 0.5, 2], T = 1, top_k = 2 → candidates (2, id 1), (2, id 3): p = 0.5, 0.5.
        // top_p 1 keeps both. u < 0.5 → id 1, u ≥ 0.5 → id 3.
        let opts = SamplerOpts { temperature: 1.0, top_k: 2, top_p: 1.0, min_p: 0.0 };
        for seed in 0..20u64 {
            let u = uniform(&mut rng(seed));
            let want = if u < 0.5 { 1 } else { 3 };
            assert_eq!(sample(&[1.0, 2.0, 0.5, 2.0], &opts, &mut rng(seed)), want, "seed {seed}, u {u}");
        }
        // logits [ln 0.6, ln 0.3, ln 0.1] (T = 1): p = .6, .3, .1. top_p = 0.8 keeps {0, 1},
        // renormalised to 2/3, 1/3. u < 2/3 → 0, else 1; id 2 is never drawn.
        let l = [0.6f64.ln() as f32, 0.3f64.ln() as f32, 0.1f64.ln() as f32];
        let opts = SamplerOpts { temperature: 1.0, top_k: 0, top_p: 0.8, min_p: 0.0 };
        for seed in 0..50u64 {
            let u = uniform(&mut rng(seed));
            let want = if u < 2.0 / 3.0 { 0 } else { 1 };
            assert_eq!(sample(&l, &opts, &mut rng(seed)), want, "seed {seed}, u {u}");
        }
        // Temperature 2 on logits [0, ln 4]: scaled [0, ln 2] → p = 1/3, 2/3; sorted: id 1 first.
        let opts = SamplerOpts { temperature: 2.0, top_k: 0, top_p: 1.0, min_p: 0.0 };
        for seed in 0..50u64 {
            let u = uniform(&mut rng(seed));
            let want = if u < 2.0 / 3.0 { 1 } else { 0 };
            assert_eq!(sample(&[0.0, 4f64.ln() as f32], &opts, &mut rng(seed)), want);
        }
    }

    #[test]
    fn hand_worked_min_p() {
        // logits [ln 0.5, ln 0.3, ln 0.15, ln 0.05] (T = 1): p = .5, .3, .15, .05. min_p 0.25 keeps p >= 0.125:
        // {0, 1, 2}, renormalised to .5/.95, .3/.95, .15/.95. u < 10/19 → 0, < 16/19 → 1, else 2; id 3 never.
        let l = [0.5f64.ln() as f32, 0.3f64.ln() as f32, 0.15f64.ln() as f32, 0.05f64.ln() as f32];
        let opts = SamplerOpts { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.25 };
        let mut seen = [0usize; 4];
        for seed in 0..200u64 {
            let u = uniform(&mut rng(seed));
            let want = if u < 10.0 / 19.0 {
                0
            } else if u < 16.0 / 19.0 {
                1
            } else {
                2
            };
            let got = sample(&l, &opts, &mut rng(seed));
            assert_eq!(got, want, "seed {seed}, u {u}");
            seen[got as usize] += 1;
        }
        assert!(seen[2] > 0 && seen[3] == 0, "{seen:?}");
        // min_p 1 keeps only the most likely token, and one draw is still made.
        let mut r = rng(3);
        assert_eq!(sample(&l, &SamplerOpts { min_p: 1.0, ..opts.clone() }, &mut r), 0);
        assert_ne!(r.next_u32(), rng(3).next_u32());
        // After the nucleus: top_p 0.7 keeps {0, 1} first, then min_p 0.7 (floor .35) keeps {0}.
        let opts = SamplerOpts { temperature: 1.0, top_k: 0, top_p: 0.7, min_p: 0.7 };
        for seed in 0..20u64 {
            assert_eq!(sample(&l, &opts, &mut rng(seed)), 0);
        }
    }

    #[test]
    fn seeded_draws_are_reproducible_and_seed_dependent() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37 % 17) as f32) * 0.1).collect();
        let opts = SamplerOpts { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0 };
        let run = |seed| {
            let mut r = rng(seed);
            (0..32).map(|_| sample(&logits, &opts, &mut r)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn validation_names_the_option() {
        let bad = SamplerOpts { temperature: -1.0, top_k: 0, top_p: 1.0, min_p: 0.0 };
        assert!(bad.validate().unwrap_err().to_string().contains("temperature"));
        for p in [0.0, 1.5, f64::NAN] {
            let bad = SamplerOpts { temperature: 1.0, top_k: 0, top_p: p, min_p: 0.0 };
            assert_eq!(bad.validate().unwrap_err().kind(), "invalid_option");
        }
        for m in [-0.1, 1.5, f64::NAN] {
            let bad = SamplerOpts { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: m };
            assert!(bad.validate().unwrap_err().to_string().contains("min_p"));
        }
    }
}
