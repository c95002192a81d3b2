//! The wasm runtime: load, validate, route, call and hot-swap consumer components. Knows nothing about
//! databases or transports: it turns a typed message into the component's typed answer.
//!
//! Files, lowest first (each uses only the ones above it): `bindings` (from `wit/`), `limits`,
//! `component_limits` (one component's own limits) and `limits_file` (the components
//! directory's `limits.toml`), `sandbox` (one call's store), `outcome` (what a call produced),
//! `stats` (per version), `component` (a loaded version), `engine` (the process-wide engine),
//! `load` and `call` (what the engine does with a component), `convert` (domain ⇄ WIT),
//! `versions`, `policy`, `registry` (which version serves), `swap` and `guard` (changing that).

pub mod bindings;
pub mod call;
pub mod component;
pub mod component_limits;
pub mod convert;
pub mod engine;
pub mod guard;
mod handle_export;
pub mod image;
pub mod limits;
pub mod limits_file;
pub mod load;
pub mod outcome;
pub mod policy;
pub mod registry;
pub mod sandbox;
pub mod stats;
pub mod swap;
pub mod versions;

pub use bindings::wit;
pub use component::{LoadError, LoadedComponent, WORLD};
pub use component_limits::{Ceilings, ComponentLimits, LimitOverrides, LimitRequest};
pub use engine::{LARGE_IMAGE_KEEP_RESIDENT, Runtime, RuntimeConfig};
pub use limits::Limits;
pub use limits_file::LimitsFile;
pub use outcome::{Answer, CallError};
pub use policy::{AutoRollback, SwapPolicy};
pub use registry::{ComponentSlot, JournalEntry, Registry, RegistryError};
pub use stats::{StatsSnapshot, VersionStats};
pub use swap::{SwapError, Swapped};
pub use versions::{Activation, Cause};
