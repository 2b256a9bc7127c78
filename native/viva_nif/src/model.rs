//! `ModelHandle`: a loaded checkpoint, read-only and shared by every caller.

use crate::atoms;
use crate::error::NifResult;
use rustler::{Atom, Encoder, Env, ResourceArc, Term};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use viva_core::{BackendKind, LoadOptions, Model, WeightFormat};

pub struct ModelResource {
    /// `AssertUnwindSafe`: the model is read-only after load; its only interior mutability is the CUDA
    /// backend's lazily created cuBLAS handle behind a (non-poisoning) `parking_lot` mutex, which a panic
    /// caught at the NIF boundary cannot leave half-updated in a way later calls would observe.
    pub model: AssertUnwindSafe<Model>,
}

#[rustler::resource_impl]
impl rustler::Resource for ModelResource {}

/// `model_load(Path, Backend, Weights)` — Backend `auto|cpu|cuda`, Weights `auto|f32|bf16|fp8`.
#[rustler::nif(schedule = "DirtyIo")]
fn model_load(path: String, backend: Term, weights: Term) -> NifResult<ResourceArc<ModelResource>> {
    let opts = LoadOptions {
        backend: BackendKind::parse(&backend.atom_to_string().unwrap_or_default())?,
        weights: WeightFormat::parse(&weights.atom_to_string().unwrap_or_default())?,
    };
    let model = Model::load(Path::new(&path), opts)?;
    Ok(ResourceArc::new(ModelResource { model: AssertUnwindSafe(model) }))
}

/// `model_info(Model)` — config facts as a map (O(1), normal scheduler).
#[rustler::nif]
fn model_info<'a>(env: Env<'a>, model: ResourceArc<ModelResource>) -> Term<'a> {
    let m = &model.model;
    let c = &m.config;
    let bos = match c.bos_token_id {
        Some(b) => b.encode(env),
        None => atoms::undefined().encode(env),
    };
    let pairs: Vec<(Term<'a>, Term<'a>)> = vec![
        (
            atoms::backend().encode(env),
            Atom::from_str(env, m.backend_name()).map_or(atoms::nil().encode(env), |a| a.encode(env)),
        ),
        (
            atoms::weights().encode(env),
            Atom::from_str(env, m.weight_format().name()).map_or(atoms::nil().encode(env), |a| a.encode(env)),
        ),
        (atoms::vocab_size().encode(env), c.vocab_size.encode(env)),
        (atoms::hidden_size().encode(env), c.hidden_size.encode(env)),
        (atoms::num_layers().encode(env), c.num_layers.encode(env)),
        (atoms::num_heads().encode(env), c.num_heads.encode(env)),
        (atoms::num_kv_heads().encode(env), c.num_kv_heads.encode(env)),
        (atoms::head_dim().encode(env), c.head_dim.encode(env)),
        (atoms::max_position_embeddings().encode(env), c.max_position_embeddings.encode(env)),
        (atoms::bos_token_id().encode(env), bos),
        (atoms::eos_token_ids().encode(env), c.eos_token_ids.encode(env)),
    ];
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| atoms::error().encode(env))
}

/// `model_tokenize(Model, Text, AddSpecial)` — ids of `Text` with the model's tokenizer.
#[rustler::nif(schedule = "DirtyCpu")]
fn model_tokenize(model: ResourceArc<ModelResource>, text: String, add_special: bool) -> NifResult<Vec<u32>> {
    Ok(model.model.tokenizer.encode(&text, add_special)?)
}

/// `model_detokenize(Model, Ids)` — text of `Ids`, special tokens skipped.
#[rustler::nif(schedule = "DirtyCpu")]
fn model_detokenize(model: ResourceArc<ModelResource>, ids: Vec<u32>) -> NifResult<String> {
    Ok(model.model.tokenizer.decode(&ids, true)?)
}

/// `nif_loaded()` — `true` once this library is loaded (the Erlang stub answers `false`).
#[rustler::nif]
fn nif_loaded() -> bool {
    true
}

/// `cuda_device()` — `{ok, Name}` of the GPU `auto` would use, or `{error, {cuda_unavailable, Why}}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn cuda_device() -> NifResult<String> {
    Ok(viva_core::probe::cuda_device()?)
}
