//! The wasm runtime: load, validate, route and call consumer components. Knows nothing about
//! databases or transports: it turns a typed message into the component's typed answer.

pub mod bindings;
pub mod call;
pub mod component;
pub mod convert;
pub mod engine;
pub mod limits;
pub mod registry;

pub use bindings::wit;
pub use call::{Answer, CallError};
pub use component::{LoadError, LoadedComponent, WORLD};
pub use engine::{Runtime, RuntimeConfig};
pub use limits::Limits;
pub use registry::{ComponentSlot, Registry, RegistryError};
