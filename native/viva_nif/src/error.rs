//! `viva_core::Error` → `{Kind, <<"message">>}` (rustler wraps it in `{error, _}`).

use rustler::{Atom, Encoder, Env, Term};

pub struct NifError(pub viva_core::Error);

impl From<viva_core::Error> for NifError {
    fn from(e: viva_core::Error) -> Self {
        NifError(e)
    }
}

impl Encoder for NifError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let kind = Atom::from_str(env, self.0.kind()).unwrap_or_else(|_| crate::atoms::internal());
        (kind, self.0.to_string()).encode(env)
    }
}

pub type NifResult<T> = Result<T, NifError>;
