//! Who handles a message: a loaded component version, or — for the few messages no component
//! can be handed (`in_host.rs`) — the host itself. Both are judged, committed, recorded as
//! exactly-once and dead-lettered the same way, under a name and a version.

use super::in_host;
use crate::runtime::LoadedComponent;
use std::sync::Arc;

/// The one a verdict is about.
#[derive(Clone, Debug)]
pub enum Handler {
    /// A component version, pinned for the whole message.
    Component(Arc<LoadedComponent>),
    /// The host itself, under the name [`in_host::HOST`].
    Host,
}

impl Handler {
    /// The name in the exactly-once record, dead letters, metrics and logs.
    pub fn name(&self) -> &str {
        match self {
            Handler::Component(c) => &c.name,
            Handler::Host => in_host::HOST,
        }
    }

    /// The component's version, or the host's.
    pub fn version(&self) -> &str {
        match self {
            Handler::Component(c) => &c.version,
            Handler::Host => in_host::VERSION,
        }
    }
}
