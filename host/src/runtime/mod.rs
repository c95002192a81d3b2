//! The wasm runtime: load, validate, route, call and hot-swap consumer components. Knows nothing about
//! databases or transports: it turns a typed message into the component's typed answer.

pub mod bindings;
pub mod call;
pub mod component;
pub mod component_limits;
pub mod convert;
pub mod engine;
pub mod guard;
pub mod limits;
pub mod limits_file;
pub mod registry;
pub mod stats;
pub mod swap;
pub mod versions;

pub use bindings::wit;
pub use call::{Answer, CallError};
pub use component::{LoadError, LoadedComponent, WORLD};
pub use component_limits::{Ceilings, ComponentLimits, LimitOverrides, LimitRequest};
pub use engine::{Runtime, RuntimeConfig};
pub use limits::Limits;
pub use limits_file::LimitsFile;
pub use registry::{ComponentSlot, JournalEntry, Registry, RegistryError};
pub use stats::{StatsSnapshot, VersionStats};
pub use swap::{AutoRollback, SwapError, SwapPolicy, Swapped};
pub use versions::{Activation, Cause};
