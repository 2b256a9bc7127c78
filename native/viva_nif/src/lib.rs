//! `viva_tensor_nif`: the thin rustler layer over `viva_core`. Each file holds one domain's NIFs,
//! named `<resource>_<verb>`; all work that can take over ~1 ms runs on dirty schedulers or on
//! the generation job's own thread.

mod atoms;
mod error;
mod job;
mod kv_cache;
mod model;
mod tokenizer;

rustler::init!("viva_tensor_nif");
