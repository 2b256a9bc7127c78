//! Generation jobs: a generation runs on its own OS thread and streams
//! `{viva_tensor, Ref, {token, Id, Piece}}` to the caller, then `{viva_tensor, Ref, {done, Stats}}`
//! or `{viva_tensor, Ref, {error, {Kind, Msg}}}`. It stops on `job_cancel/1`, when the caller dies
//! (a resource monitor), or when a message can no longer be delivered.

use crate::atoms;
use crate::error::{NifError, NifResult};
use crate::model::ModelResource;
use rustler::{Atom, Encoder, Env, LocalPid, Monitor, NifMap, OwnedEnv, ResourceArc, Term};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use viva_core::sampler::{Penalties, SamplerOpts};
use viva_core::{Error, GenOpts, GenStats};

pub struct JobResource {
    cancel: Arc<AtomicBool>,
}

#[rustler::resource_impl]
impl rustler::Resource for JobResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _mon: Monitor) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The option map the Erlang core builds (all keys present, already validated there).
#[derive(NifMap)]
struct GenOptsTerm {
    max_new_tokens: u64,
    temperature: f64,
    top_k: u64,
    top_p: f64,
    min_p: f64,
    repetition_penalty: f64,
    presence_penalty: f64,
    frequency_penalty: f64,
    seed: u64,
    stop_on_eos: bool,
    stop: Vec<String>,
}

/// `generate_start(Model, PromptIds, Opts, Pid, Ref)` → `{ok, Job}`; messages go to `Pid`, tagged `Ref`.
#[rustler::nif]
fn generate_start<'a>(
    env: Env<'a>,
    model: ResourceArc<ModelResource>,
    prompt: Vec<u32>,
    opts: GenOptsTerm,
    pid: LocalPid,
    reference: Term<'a>,
) -> NifResult<ResourceArc<JobResource>> {
    let opts = GenOpts {
        max_new_tokens: opts.max_new_tokens as usize,
        sampler: SamplerOpts {
            temperature: opts.temperature,
            top_k: opts.top_k as usize,
            top_p: opts.top_p,
            min_p: opts.min_p,
        },
        penalties: Penalties {
            repetition: opts.repetition_penalty,
            presence: opts.presence_penalty,
            frequency: opts.frequency_penalty,
        },
        seed: opts.seed,
        stop_on_eos: opts.stop_on_eos,
        stop: opts.stop,
    };
    opts.validate()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let job = ResourceArc::new(JobResource { cancel: cancel.clone() });
    job.monitor(Some(env), &pid);
    let ref_env = OwnedEnv::new();
    let saved_ref = ref_env.save(reference);
    let keep_alive = job.clone();
    std::thread::Builder::new()
        .name("viva_tensor_gen".into())
        .spawn(move || {
            let _job = keep_alive;
            // Owns the saved reference: it must live as long as this thread sends messages.
            let ref_env = ref_env;
            let mut msg_env = OwnedEnv::new();
            // A saved term only loads into its own OwnedEnv, and `send_and_clear` clears the
            // message env: so the reference stays in `ref_env` and is copied into each message.
            let mut send = |build: &dyn for<'b> Fn(Env<'b>) -> Term<'b>| -> bool {
                ref_env.run(|renv| {
                    let r = saved_ref.load(renv);
                    msg_env.send_and_clear(&pid, |e| (atoms::viva_tensor(), r.in_env(e), build(e)).encode(e)).is_ok()
                })
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                viva_core::generate(&model.model, &prompt, &opts, &cancel, &mut |id, piece| {
                    send(&|e| (atoms::token(), id, piece).encode(e))
                })
            }));
            match outcome {
                Ok(Ok(stats)) => {
                    let backend = model.model.backend_name();
                    send(&|e| (atoms::done(), stats_map(e, &stats, backend)).encode(e));
                }
                Ok(Err(err)) => {
                    let err = NifError(err);
                    send(&|e| (atoms::error(), &err).encode(e));
                }
                Err(_) => {
                    let err = NifError(Error::Io("internal error: the generation thread panicked".into()));
                    send(&|e| (atoms::error(), &err).encode(e));
                }
            }
        })
        .map_err(|e| NifError(Error::Io(format!("cannot start a generation thread: {e}"))))?;
    Ok(job)
}

fn stats_map<'a>(env: Env<'a>, s: &GenStats, backend: &str) -> Term<'a> {
    let atom = |name: &str| Atom::from_str(env, name).map_or(atoms::nil().encode(env), |a| a.encode(env));
    let pairs: Vec<(Term<'a>, Term<'a>)> = vec![
        (atoms::text().encode(env), s.text.as_str().encode(env)),
        (atoms::tokens().encode(env), s.tokens.encode(env)),
        (atoms::prompt_tokens().encode(env), s.prompt_tokens.encode(env)),
        (atoms::finish_reason().encode(env), atom(s.finish_reason.name())),
        (atoms::backend().encode(env), atom(backend)),
        (atoms::prefill_us().encode(env), s.prefill_us.encode(env)),
        (atoms::decode_us().encode(env), s.decode_us.encode(env)),
    ];
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| atoms::error().encode(env))
}

/// `job_cancel(Job)` — asks the job to stop; it still sends `done` with `finish_reason => cancelled`.
#[rustler::nif]
fn job_cancel(job: ResourceArc<JobResource>) -> Atom {
    job.cancel.store(true, Ordering::Relaxed);
    atoms::ok()
}
