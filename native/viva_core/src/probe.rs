//! What this build and machine can run, for `backend: auto` and for users asking.

#[cfg(not(feature = "cuda"))]
use crate::error::Error;
use crate::error::Result;

/// Name of the CUDA device `auto` would use, or why there is none (`cuda_unavailable`).
/// The first successful call initialises the device and compiles the kernels (cached afterwards).
pub fn cuda_device() -> Result<String> {
    #[cfg(feature = "cuda")]
    {
        crate::backend::cuda::device::device().map(|d| d.name.clone())
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(Error::CudaUnavailable("this build of viva_tensor has no CUDA backend (feature `cuda` off)".into()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuda_device_is_a_name_or_cuda_unavailable() {
        match super::cuda_device() {
            Ok(name) => assert!(!name.is_empty()),
            Err(e) => assert_eq!(e.kind(), "cuda_unavailable", "{e}"),
        }
    }
}
