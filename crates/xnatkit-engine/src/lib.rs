//! # xnatkit-engine
//!
//! The processing engine without HTTP or a database: what the server's
//! Container Service API and its job queue are built on.
//!
//! - [`validate`]: which commands can run here. XNAT commands are Docker
//!   images; this engine has no container runtime, so a command is either
//!   built in ([`BUILTIN_TYPE`]) or a command line run on the worker with
//!   its inputs and outputs as folders ([`COMMAND_LINE_TYPE`]).
//! - [`builtin`]: the commands shipped with the binary (dcm2niix, qa), as
//!   command JSON.
//! - [`resolve`]: a launch turned into a runnable job — wrapper inputs,
//!   derived inputs, `#name#` replacement keys, mounts, output handlers.
//! - [`configuration`]: site and project settings over a wrapper's input
//!   defaults, matchers and output labels, and the command as configured.
//! - [`matcher`]: derived inputs' matchers (the JSONPath filter forms
//!   XNAT's commands use) on archive objects.
//! - [`output_glob`]: which of an output folder's files an output takes
//!   (its `glob`).
//! - [`launch_ui`]: a wrapper's launch form (`GET .../launch`), its inputs
//!   as trees with the values a resolution found.
//! - [`job`]: the run's status state machine and its history entries.
//! - [`executor`]: the [`Executor`] seam and the local worker pool.
//! - [`slurm`]: the Slurm executor (`serve --executor slurm`).
//!
//! The JSON shapes themselves live in `xnatkit_model::container`, shared
//! with the client.

pub mod builtin;
pub mod configuration;
pub mod executor;
pub mod job;
pub mod launch_ui;
pub mod matcher;
pub mod output_glob;
pub mod resolve;
pub mod slurm;
pub mod validate;

pub use executor::{Executor, JobRun, LocalPool, RunKind, RunOutcome};
pub use job::JobStatus;
pub use resolve::{OutputKind, ResolveError, ResolvedJob, XnatObject, XnatResource};
pub use slurm::SlurmExecutor;
pub use validate::{BUILTIN_TYPE, COMMAND_LINE_TYPE, InvalidCommand, validate};
pub use xnatkit_model::container::{
    Command, CommandInput, CommandOutput, Mount, OutputHandler, Wrapper, WrapperInput,
};
