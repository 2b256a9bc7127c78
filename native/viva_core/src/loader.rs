//! Checkpoint discovery and safetensors access.
//!
//! A checkpoint path may be a folder, a `.safetensors` file or a `model.safetensors.index.json`;
//! `config.json` and `tokenizer.json` are looked up beside the weights. Each weight file is
//! memory-mapped once and its header validated once (by the `safetensors` crate); tensors are then
//! converted to f32 straight from the mapping, each byte read a single time.

use crate::error::{Error, Result};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a checkpoint's files are.
#[derive(Debug, Clone)]
pub struct CheckpointPaths {
    pub dir: PathBuf,
    pub weight_files: Vec<PathBuf>,
    pub config: PathBuf,
    pub tokenizer: PathBuf,
}

/// Resolves a user-given path (folder, `.safetensors` file or index json) to the checkpoint's files.
pub fn resolve(path: &Path) -> Result<CheckpointPaths> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let (dir, weight_files) = if meta.is_dir() {
        (path.to_path_buf(), weights_in_dir(path)?)
    } else {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let files = if name.ends_with(".json") { shards_from_index(path)? } else { vec![path.to_path_buf()] };
        (dir, files)
    };
    Ok(CheckpointPaths { config: dir.join("config.json"), tokenizer: dir.join("tokenizer.json"), dir, weight_files })
}

fn weights_in_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return shards_from_index(&index);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Error::NoWeights(format!(
            "{}: no model.safetensors, model.safetensors.index.json or *.safetensors file in this folder",
            dir.display()
        )));
    }
    Ok(found)
}

fn shards_from_index(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidSafetensors(format!("{}: not valid JSON: {e}", index.display())))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::InvalidSafetensors(format!("{}: no `weight_map` object", index.display())))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for (tensor, file) in map {
        let f = file.as_str().ok_or_else(|| {
            Error::InvalidSafetensors(format!("{}: weight_map[{tensor}] is not a file name", index.display()))
        })?;
        let p = dir.join(f);
        if !files.contains(&p) {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::NoWeights(format!("{}: weight_map is empty", index.display())));
    }
    Ok(files)
}

/// Element type of a stored tensor (the ones the engine reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDtype {
    F32,
    Bf16,
    F16,
}

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: Result2<StoredDtype>,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// Unsupported dtypes are remembered (not rejected) at open time: only a tensor the model
/// actually needs makes the load fail, with the tensor's name in the message.
type Result2<T> = std::result::Result<T, String>;

/// All tensors of a checkpoint, memory-mapped.
pub struct TensorStore {
    files: Vec<(PathBuf, Mmap)>,
    entries: HashMap<String, Entry>,
}

impl TensorStore {
    /// Maps every weight file and validates its header and data offsets.
    pub fn open(paths: &[PathBuf]) -> Result<TensorStore> {
        let mut files = Vec::with_capacity(paths.len());
        let mut entries = HashMap::new();
        for (i, path) in paths.iter().enumerate() {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            // SAFETY: the mapping is read-only; a checkpoint modified while loaded is the user's problem,
            // exactly as with every other mmap-based loader.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
            let st = SafeTensors::deserialize(&mmap)
                .map_err(|e| Error::InvalidSafetensors(format!("{}: {}", path.display(), describe_st_error(&e))))?;
            let base = mmap.as_ptr() as usize;
            for (name, view) in st.tensors() {
                let dtype = match view.dtype() {
                    Dtype::F32 => Ok(StoredDtype::F32),
                    Dtype::BF16 => Ok(StoredDtype::Bf16),
                    Dtype::F16 => Ok(StoredDtype::F16),
                    other => Err(format!("{other:?}")),
                };
                let start = view.data().as_ptr() as usize - base;
                entries.insert(
                    name,
                    Entry { file: i, dtype, shape: view.shape().to_vec(), start, end: start + view.data().len() },
                );
            }
            drop(st);
            files.push((path.clone(), mmap));
        }
        Ok(TensorStore { files, entries })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Shape and dtype of `name`, checked against `expected`.
    pub fn check(&self, name: &str, expected: &[usize]) -> Result<StoredDtype> {
        let e = self.entries.get(name).ok_or_else(|| {
            Error::MissingTensor(format!("tensor `{name}` is not in the checkpoint ({})", self.file_list()))
        })?;
        let dtype = e.dtype.clone().map_err(|d| {
            Error::UnsupportedDtype(format!("{name}: dtype {d} is not supported (F32, BF16 and F16 are)"))
        })?;
        if e.shape != expected {
            return Err(Error::ShapeMismatch(format!("{name}: expected {}, got {}", dims(expected), dims(&e.shape))));
        }
        Ok(dtype)
    }

    /// Raw little-endian bytes of `name` after [`TensorStore::check`].
    pub fn bytes(&self, name: &str, expected: &[usize]) -> Result<(StoredDtype, &[u8])> {
        let dtype = self.check(name, expected)?;
        let e = &self.entries[name];
        Ok((dtype, &self.files[e.file].1[e.start..e.end]))
    }

    /// Tensor `name` as f32, checking its shape.
    pub fn f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let (dtype, bytes) = self.bytes(name, expected)?;
        Ok(to_f32(dtype, bytes))
    }

    fn file_list(&self) -> String {
        self.files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// `[256,2048]`: the shape format every backend uses in messages.
pub fn dims(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// Converts little-endian stored elements to f32 (exact for every supported dtype).
pub fn to_f32(dtype: StoredDtype, bytes: &[u8]) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let esize = match dtype {
        StoredDtype::F32 => 4,
        _ => 2,
    };
    let mut out = vec![0f32; bytes.len() / esize];
    out.par_chunks_mut(CHUNK).zip(bytes.par_chunks(CHUNK * esize)).for_each(|(o, b)| match dtype {
        StoredDtype::F32 => {
            for (x, c) in o.iter_mut().zip(b.chunks_exact(4)) {
                *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        StoredDtype::Bf16 => {
            for (x, c) in o.iter_mut().zip(b.chunks_exact(2)) {
                *x = half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
            }
        }
        StoredDtype::F16 => {
            for (x, c) in o.iter_mut().zip(b.chunks_exact(2)) {
                *x = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
            }
        }
    });
    out
}

fn describe_st_error(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => "file too small to hold a safetensors header (truncated?)".into(),
        E::HeaderTooLarge => "header length is implausibly large (corrupt file?)".into(),
        E::InvalidHeaderLength => "header length runs past the end of the file (truncated?)".into(),
        E::InvalidHeaderDeserialization(m) => format!("header is not valid safetensors JSON: {m}"),
        E::MetadataIncompleteBuffer => "data section shorter than the header declares (truncated?)".into(),
        E::InvalidOffset(t) => format!("tensor `{t}` has data offsets that are out of order or overlap"),
        E::TensorInvalidInfo => "a tensor's byte size does not match its dtype and shape".into(),
        other => other.to_string(),
    }
}
