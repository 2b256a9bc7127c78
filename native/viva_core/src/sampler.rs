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

/// Repetition, presence and frequency penalties (DESIGN.md generation options; validated by
/// [`Penalties::validate`]). All off by default.
#[derive(Debug, Clone, PartialEq)]
pub struct Penalties {
    /// Hugging Face's `repetition_penalty`: the logit of every id already in the prompt or the generated tokens is
    /// divided by it when positive, multiplied by it when negative. 1 = off; must be > 0.
    pub repetition: f64,
    /// Subtracted from the logit of every id generated at least once. 0 = off; in [-2, 2].
    pub presence: f64,
    /// Subtracted, times the number of times it was generated, from every id's logit. 0 = off; in [-2, 2].
    pub frequency: f64,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties { repetition: 1.0, presence: 0.0, frequency: 0.0 }
    }
}

impl Penalties {
    pub fn active(&self) -> bool {
        self.repetition != 1.0 || self.presence != 0.0 || self.frequency != 0.0
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.repetition.is_finite() && self.repetition > 0.0) {
            return Err(Error::InvalidOption(format!("repetition_penalty must be > 0, got {}", self.repetition)));
        }
        for (name, v) in [("presence_penalty", self.presence), ("frequency_penalty", self.frequency)] {
            if !(-2.0..=2.0).contains(&v) {
                return Err(Error::InvalidOption(format!("{name} must be in [-2, 2], got {v}")));
            }
        }
        Ok(())
    }
}

/// What the penalties look at: which ids are in the prompt or were generated, and how often each was generated.
#[derive(Debug, Clone)]
pub struct History {
    seen: Vec<bool>,
    counts: Vec<u32>,
}

impl History {
    /// A history over `vocab` ids holding the prompt (ids outside the vocabulary are ignored).
    pub fn new(vocab: usize, prompt: &[u32]) -> History {
        let mut seen = vec![false; vocab];
        for &id in prompt {
            if let Some(s) = seen.get_mut(id as usize) {
                *s = true;
            }
        }
        History { seen, counts: vec![0; vocab] }
    }

    /// Records a generated id.
    pub fn push(&mut self, id: u32) {
        if let (Some(s), Some(c)) = (self.seen.get_mut(id as usize), self.counts.get_mut(id as usize)) {
            *s = true;
            *c += 1;
        }
    }
}

/// The logits after the penalties of `h`, in f64, for [`sample_f64`]. Per id, in this order: the repetition
/// penalty (`l / r` if `l >= 0`, else `l * r`) for ids in the prompt or generated, then `l -= presence` if it was
/// generated, then `l -= frequency * count`. Each step runs only when its penalty is not off, so that the Erlang
/// sampler can repeat the same operations. `h` must cover the logits' ids.
pub fn penalize(logits: &[f32], p: &Penalties, h: &History) -> Vec<f64> {
    logits
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let mut l = x as f64;
            if p.repetition != 1.0 && h.seen[i] {
                l = if l < 0.0 { l * p.repetition } else { l / p.repetition };
            }
            let c = h.counts[i];
            if p.presence != 0.0 && c > 0 {
                l -= p.presence;
            }
            if p.frequency != 0.0 && c > 0 {
                l -= p.frequency * c as f64;
            }
            l
        })
        .collect()
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
pub fn argmax<T: PartialOrd>(logits: &[T]) -> u32 {
    let mut best = 0usize;
    for (i, x) in logits.iter().enumerate() {
        if *x > logits[best] {
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
    draw(logits.iter().map(|&l| l as f64), opts, rng)
}

/// [`sample`] on f64 logits (after [`penalize`]); the same result for f32 logits widened to f64.
pub fn sample_f64(logits: &[f64], opts: &SamplerOpts, rng: &mut Pcg32) -> u32 {
    if opts.temperature == 0.0 || logits.is_empty() {
        return argmax(logits);
    }
    draw(logits.iter().copied(), opts, rng)
}

fn draw(logits: impl Iterator<Item = f64>, opts: &SamplerOpts, rng: &mut Pcg32) -> u32 {
    let t = opts.temperature;
    // Scaled logits, sorted descending, ties to the lower index.
    // `+ 0.0` turns -0.0 into +0.0 so that `total_cmp` treats them as the tie they are.
    let mut cand: Vec<(f64, u32)> = logits.enumerate().map(|(i, l)| (l / t + 0.0, i as u32)).collect();
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
    fn hand_worked_penalties() {
        // Prompt {0}; generated: id 3 twice, id 1 once. r 2, presence 0.5, frequency 0.25:
        // id 0: 2 / 2 = 1; id 1: -1 * 2 - 0.5 - 0.25 = -2.75; id 2 (unseen): 0.5; id 3: 3 / 2 - 0.5 - 0.5 = 0.5.
        let mut h = History::new(4, &[0]);
        [3, 1, 3].into_iter().for_each(|id| h.push(id));
        let p = Penalties { repetition: 2.0, presence: 0.5, frequency: 0.25 };
        let l = [2.0f32, -1.0, 0.5, 3.0];
        assert_eq!(penalize(&l, &p, &h), vec![1.0, -2.75, 0.5, 0.5]);
        // Greedy after the penalties picks id 0 (without them, 3).
        let greedy = SamplerOpts::greedy();
        assert_eq!(sample_f64(&penalize(&l, &p, &h), &greedy, &mut rng(0)), 0);
        assert_eq!(sample(&l, &greedy, &mut rng(0)), 3);
        // Off, the logits are only widened; sample_f64 then draws as sample does.
        let off = Penalties::default();
        assert!(!off.active());
        assert_eq!(penalize(&l, &off, &h), vec![2.0, -1.0, 0.5, 3.0]);
        let opts = SamplerOpts { temperature: 0.9, top_k: 3, top_p: 0.95, min_p: 0.05 };
        for seed in 0..50u64 {
            assert_eq!(sample_f64(&penalize(&l, &off, &h), &opts, &mut rng(seed)), sample(&l, &opts, &mut rng(seed)));
        }
    }

    #[test]
    fn penalty_validation_names_the_option() {
        for (p, name) in [
            (Penalties { repetition: 0.0, ..Penalties::default() }, "repetition_penalty"),
            (Penalties { repetition: f64::INFINITY, ..Penalties::default() }, "repetition_penalty"),
            (Penalties { presence: 2.5, ..Penalties::default() }, "presence_penalty"),
            (Penalties { frequency: -3.0, ..Penalties::default() }, "frequency_penalty"),
            (Penalties { frequency: f64::NAN, ..Penalties::default() }, "frequency_penalty"),
        ] {
            assert!(p.validate().unwrap_err().to_string().contains(name), "{p:?}");
        }
        assert!(Penalties { repetition: 1.3, presence: -2.0, frequency: 2.0 }.validate().is_ok());
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
