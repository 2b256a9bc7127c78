//! One error type for the whole engine. Every variant carries a message that names what was wrong
//! (path, tensor, option, value); `kind()` is the stable atom the BEAM side sees.

/// Engine error. `Display` is the human message; [`Error::kind`] is the machine-readable class.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NoWeights(String),
    #[error("{0}")]
    InvalidSafetensors(String),
    #[error("{0}")]
    MissingTensor(String),
    #[error("{0}")]
    ShapeMismatch(String),
    #[error("{0}")]
    UnsupportedDtype(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidTokenizer(String),
    #[error("{0}")]
    InvalidOption(String),
    #[error("{0}")]
    PromptTooLong(String),
    #[error("{0}")]
    TokenOutOfRange(String),
    #[error("{0}")]
    CudaUnavailable(String),
    #[error("{0}")]
    Cuda(String),
    #[error("{0}")]
    Io(String),
    #[error("generation cancelled")]
    Cancelled,
}

impl Error {
    /// The error class, identical to the atom used by every backend (see docs/architecture.md).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::NoWeights(_) => "no_weights",
            Error::InvalidSafetensors(_) => "invalid_safetensors",
            Error::MissingTensor(_) => "missing_tensor",
            Error::ShapeMismatch(_) => "shape_mismatch",
            Error::UnsupportedDtype(_) => "unsupported_dtype",
            Error::InvalidConfig(_) => "invalid_config",
            Error::InvalidTokenizer(_) => "invalid_tokenizer",
            Error::InvalidOption(_) => "invalid_option",
            Error::PromptTooLong(_) => "prompt_too_long",
            Error::TokenOutOfRange(_) => "token_out_of_range",
            Error::CudaUnavailable(_) => "cuda_unavailable",
            Error::Cuda(_) => "cuda_error",
            Error::Io(_) => "io_error",
            Error::Cancelled => "cancelled",
        }
    }

    /// An I/O error on `path`, classified as `not_found` when the file is absent.
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("{}: no such file or directory", path.display()))
        } else {
            Error::Io(format!("{}: {e}", path.display()))
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
