//! A standalone tokenizer resource (`VivaTensor.load_tokenizer/1`).

use crate::error::NifResult;
use rustler::ResourceArc;
use std::path::Path;
use viva_core::tokenizer::Tokenizer;

pub struct TokenizerResource {
    pub tok: Tokenizer,
}

#[rustler::resource_impl]
impl rustler::Resource for TokenizerResource {}

#[rustler::nif(schedule = "DirtyIo")]
fn tokenizer_load(path: String) -> NifResult<ResourceArc<TokenizerResource>> {
    Ok(ResourceArc::new(TokenizerResource { tok: Tokenizer::from_path(Path::new(&path))? }))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn tokenizer_encode(tok: ResourceArc<TokenizerResource>, text: String, add_special: bool) -> NifResult<Vec<u32>> {
    Ok(tok.tok.encode(&text, add_special)?)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn tokenizer_decode(tok: ResourceArc<TokenizerResource>, ids: Vec<u32>) -> NifResult<String> {
    Ok(tok.tok.decode(&ids, true)?)
}

#[rustler::nif]
fn tokenizer_vocab_size(tok: ResourceArc<TokenizerResource>) -> usize {
    tok.tok.vocab_size()
}
