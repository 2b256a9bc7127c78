//! `KvCache`: one sequence's state for the step-by-step API (`model_forward`).

use crate::error::{NifError, NifResult};
use crate::model::ModelResource;
use rustler::{Binary, Env, OwnedBinary, ResourceArc};
use std::sync::Mutex;

pub struct KvCacheResource {
    cache: Mutex<viva_core::KvCache>,
}

#[rustler::resource_impl]
impl rustler::Resource for KvCacheResource {}

/// Dirty: a CUDA cache allocates device memory.
#[rustler::nif(schedule = "DirtyCpu")]
fn kv_cache_new(model: ResourceArc<ModelResource>) -> NifResult<ResourceArc<KvCacheResource>> {
    Ok(ResourceArc::new(KvCacheResource { cache: Mutex::new(model.model.new_cache()?) }))
}

#[rustler::nif]
fn kv_cache_len(cache: ResourceArc<KvCacheResource>) -> usize {
    cache.cache.lock().map(|c| c.len()).unwrap_or(0)
}

/// `model_forward(Model, Cache, Ids)` — feeds `Ids` at the cache's next positions and returns the
/// last position's logits as a little-endian f32 binary.
#[rustler::nif(schedule = "DirtyCpu")]
fn model_forward<'a>(
    env: Env<'a>,
    model: ResourceArc<ModelResource>,
    cache: ResourceArc<KvCacheResource>,
    ids: Vec<u32>,
) -> NifResult<Binary<'a>> {
    let mut c = cache
        .cache
        .lock()
        .map_err(|_| NifError(viva_core::Error::Io("KvCache is poisoned by an earlier failure".into())))?;
    let logits = model.model.forward(&mut c, &ids)?;
    let mut bin = OwnedBinary::new(logits.len() * 4)
        .ok_or_else(|| NifError(viva_core::Error::Io("cannot allocate the logits binary".into())))?;
    for (dst, x) in bin.as_mut_slice().chunks_exact_mut(4).zip(&logits) {
        dst.copy_from_slice(&x.to_le_bytes());
    }
    Ok(bin.release(env))
}
