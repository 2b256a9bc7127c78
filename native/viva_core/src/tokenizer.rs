//! `tokenizer.json` through the `tokenizers` crate, plus incremental detokenization.
//!
//! BOS is added exactly as HF does: by the file's own post-processor when `add_special_tokens` is
//! true (Llama-2's TemplateProcessing `<s> $A`), never by us.

use crate::error::{Error, Result};
use std::path::Path;

/// A loaded tokenizer (shared read-only between generations).
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    /// Loads `tokenizer.json` (or the `tokenizer.json` inside a folder).
    pub fn from_path(path: &Path) -> Result<Tokenizer> {
        let file = if path.is_dir() { path.join("tokenizer.json") } else { path.to_path_buf() };
        let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if file != path => {
                Error::NotFound(format!("{}: no tokenizer.json in this folder", path.display()))
            }
            _ => Error::io(&file, e),
        })?;
        Tokenizer::from_bytes(&bytes).map_err(|e| Error::InvalidTokenizer(format!("{}: {e}", file.display())))
    }

    /// Parses a `tokenizer.json` document.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::InvalidTokenizer(format!("cannot parse tokenizer.json: {e}")))?;
        Ok(Tokenizer { inner })
    }

    /// Token ids of `text`; `add_special_tokens` runs the file's post-processor (BOS for Llama).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::InvalidTokenizer(format!("encoding failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped or kept.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::TokenOutOfRange(format!("token id {bad} is outside the vocabulary (size {vocab})")));
        }
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::InvalidTokenizer(format!("decoding failed: {e}")))
    }

    /// Like [`Tokenizer::decode`], but ids the tokenizer does not know (a model's padding rows beyond
    /// the tokenizer's vocabulary) decode to nothing, as in HF.
    pub fn decode_known(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let vocab = self.vocab_size() as u32;
        if ids.iter().all(|&id| id < vocab) {
            return self.decode(ids, skip_special_tokens);
        }
        let known: Vec<u32> = ids.iter().copied().filter(|&id| id < vocab).collect();
        self.decode(&known, skip_special_tokens)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// Incremental detokenizer over the generated ids: emits text only once it is complete UTF-8,
/// and keeps enough context that decoders which strip or merge (SentencePiece's leading-space strip,
/// byte fallback) give the same text as decoding everything at once.
#[derive(Default)]
pub struct Detokenizer {
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl Detokenizer {
    pub fn new() -> Detokenizer {
        Detokenizer::default()
    }

    /// Adds one token and returns the newly completed text (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let old = tok.decode_known(&self.ids[self.prefix..self.read], true)?;
        let new = tok.decode_known(&self.ids[self.prefix..], true)?;
        if new.len() > old.len() && !new.ends_with('\u{FFFD}') && new.is_char_boundary(old.len()) {
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(new[old.len()..].to_string())
        } else {
            Ok(String::new())
        }
    }

    /// Text not yet emitted (an incomplete UTF-8 tail), decoded as it is.
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        let old = tok.decode_known(&self.ids[self.prefix..self.read], true)?;
        let new = tok.decode_known(&self.ids[self.prefix..], true)?;
        self.prefix = self.ids.len();
        self.read = self.ids.len();
        Ok(if new.len() > old.len() && new.is_char_boundary(old.len()) {
            new[old.len()..].to_string()
        } else {
            String::new()
        })
    }
}
