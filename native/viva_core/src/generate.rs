//! The generation loop (docs/architecture.md, "The generation loop"): prefill, sample, detokenize
//! incrementally, stop on EOS / stop sequence / length / cancellation.

use crate::error::{Error, Result};
use crate::model::{KvCache, Model};
use crate::sampler::{self, Penalties, SamplerOpts};
use crate::tokenizer::Detokenizer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Generation options (already range-checked by [`GenOpts::validate`]).
#[derive(Debug, Clone)]
pub struct GenOpts {
    pub max_new_tokens: usize,
    pub sampler: SamplerOpts,
    /// Applied to the logits before the sampler (with any of them on, CUDA greedy decoding takes the host loop).
    pub penalties: Penalties,
    pub seed: u64,
    pub stop_on_eos: bool,
    pub stop: Vec<String>,
}

impl Default for GenOpts {
    fn default() -> Self {
        GenOpts {
            max_new_tokens: 64,
            sampler: SamplerOpts::greedy(),
            penalties: Penalties::default(),
            seed: 42,
            stop_on_eos: true,
            stop: vec![],
        }
    }
}

impl GenOpts {
    pub fn validate(&self) -> Result<()> {
        self.sampler.validate()?;
        self.penalties.validate()?;
        if self.stop.iter().any(String::is_empty) {
            return Err(Error::InvalidOption("stop sequences must not be empty strings".into()));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Eos,
    Stop,
    Length,
    Cancelled,
}

impl FinishReason {
    pub fn name(self) -> &'static str {
        match self {
            FinishReason::Eos => "eos",
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// The outcome of one generation.
#[derive(Debug, Clone)]
pub struct GenStats {
    pub text: String,
    pub tokens: Vec<u32>,
    pub prompt_tokens: Vec<u32>,
    pub finish_reason: FinishReason,
    pub prefill_us: u64,
    pub decode_us: u64,
}

/// Stop-sequence bookkeeping: the text so far, how much of it was emitted, and the hold-back rule.
struct StopText<'a> {
    text: String,
    emitted: usize,
    stops: &'a [String],
}

impl StopText<'_> {
    /// Appends `piece`; returns (text to emit now, whether a stop sequence was hit).
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.text.push_str(piece);
        if let Some(cut) = self.stops.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            self.text.truncate(cut);
            let out = self.text.get(self.emitted..).unwrap_or("").to_string();
            self.emitted = self.text.len().max(self.emitted);
            return (out, true);
        }
        // Hold back the longest suffix that is a proper prefix of a stop string.
        let mut hold = 0;
        for s in self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if i > hold && self.text.ends_with(&s[..i]) {
                    hold = i;
                }
            }
        }
        let upto = (self.text.len() - hold).max(self.emitted);
        let out = self.text[self.emitted..upto].to_string();
        self.emitted = upto;
        (out, false)
    }
}

/// Runs one generation. `on_token(id, piece)` is called for every generated token and returns
/// `false` to stop (the consumer went away); `cancel` is polled between tokens.
pub fn generate(
    model: &Model,
    prompt_ids: &[u32],
    opts: &GenOpts,
    cancel: &AtomicBool,
    on_token: &mut dyn FnMut(u32, &str) -> bool,
) -> Result<GenStats> {
    opts.validate()?;
    let cfg = &model.config;
    if prompt_ids.is_empty() {
        return Err(Error::InvalidOption("the prompt has no tokens".into()));
    }
    if prompt_ids.len() > cfg.max_position_embeddings {
        return Err(Error::PromptTooLong(format!(
            "the prompt has {} tokens but the model's context is {} positions",
            prompt_ids.len(),
            cfg.max_position_embeddings
        )));
    }
    if let Some(bad) = prompt_ids.iter().find(|&&id| id as usize >= cfg.vocab_size) {
        return Err(Error::TokenOutOfRange(format!(
            "prompt token id {bad} is outside the vocabulary (size {})",
            cfg.vocab_size
        )));
    }
    let mut cache: KvCache = model.new_cache()?;
    let mut rng = sampler::rng(opts.seed);
    let mut detok = Detokenizer::new();
    let mut text = StopText { text: String::new(), emitted: 0, stops: &opts.stop };
    let mut tokens = Vec::new();
    let mut finish = FinishReason::Length;

    let t0 = Instant::now();
    let mut logits = if opts.max_new_tokens > 0 { Some(model.forward(&mut cache, prompt_ids)?) } else { None };
    let prefill_us = t0.elapsed().as_micros() as u64;
    let t1 = Instant::now();
    // Per generated token: EOS, detokenization, stop strings, the consumer; `Ok(true)` asks for more.
    let max_pos = cfg.max_position_embeddings;
    let mut accept = |id: u32, cache_len: usize| -> Result<bool> {
        if cancel.load(Ordering::Relaxed) {
            finish = FinishReason::Cancelled;
            return Ok(false);
        }
        tokens.push(id);
        if opts.stop_on_eos && cfg.eos_token_ids.contains(&id) {
            finish = if on_token(id, "") { FinishReason::Eos } else { FinishReason::Cancelled };
            return Ok(false);
        }
        let piece = detok.push(&model.tokenizer, id)?;
        let (out, stopped) = text.push(&piece);
        if !on_token(id, &out) {
            finish = FinishReason::Cancelled;
            return Ok(false);
        }
        if stopped {
            finish = FinishReason::Stop;
            return Ok(false);
        }
        Ok(tokens.len() < opts.max_new_tokens && cache_len < max_pos)
    };
    let penalized = opts.penalties.active();
    let on_device_greedy = opts.sampler.temperature == 0.0 && !penalized && model.backend_name() == "cuda";
    if on_device_greedy {
        // The engine's greedy loop (argmax on the device, the host one step ahead): the same tokens
        // and the same stopping rules as the loop below, without a logits copy per token.
        if let Some(l) = logits.take() {
            let first = sampler::argmax(&l);
            if accept(first, cache.len())? {
                let mut len = cache.len();
                let mut failed = None;
                let room = opts.max_new_tokens.saturating_sub(1);
                model.decode_greedy(&mut cache, first, room, &mut |id| {
                    len += 1;
                    match accept(id, len) {
                        Ok(more) => more,
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    }
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
    } else {
        // The penalties' history, sized by the logits.
        let mut hist: Option<sampler::History> = None;
        while let Some(l) = logits.take() {
            if cancel.load(Ordering::Relaxed) {
                finish = FinishReason::Cancelled;
                break;
            }
            let id = if penalized {
                let h = hist.get_or_insert_with(|| sampler::History::new(l.len(), prompt_ids));
                let id = sampler::sample_f64(&sampler::penalize(&l, &opts.penalties, h), &opts.sampler, &mut rng);
                h.push(id);
                id
            } else {
                sampler::sample(&l, &opts.sampler, &mut rng)
            };
            if accept(id, cache.len())? {
                logits = Some(model.forward(&mut cache, &[id])?);
            }
        }
    }
    if matches!(finish, FinishReason::Length | FinishReason::Eos) {
        let tail = detok.flush(&model.tokenizer)?;
        let (_, stopped) = text.push(&tail);
        if stopped {
            finish = FinishReason::Stop;
        }
        // What was held back for a possible stop string is released: it is part of the text.
    }
    Ok(GenStats {
        text: text.text,
        tokens,
        prompt_tokens: prompt_ids.to_vec(),
        finish_reason: finish,
        prefill_us,
        decode_us: t1.elapsed().as_micros() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::StopText;

    #[test]
    fn stop_text_holds_back_prefixes_and_cuts_at_stop() {
        let stops = vec!["END".to_string()];
        let mut s = StopText { text: String::new(), emitted: 0, stops: &stops };
        assert_eq!(s.push("abc E"), ("abc ".to_string(), false)); // "E" may start "END"
        assert_eq!(s.push("x"), ("Ex".to_string(), false));
        assert_eq!(s.push(" EN"), (" ".to_string(), false));
        assert_eq!(s.push("D and more"), ("".to_string(), true));
        assert_eq!(s.text, "abc Ex ");
    }
}
