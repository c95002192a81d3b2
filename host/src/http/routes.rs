//! Every HTTP route the host serves, as data: its path, its methods and who may call it.
//!
//! The routers are built with [`at`], which refuses (at start-up, so every test fails) a path
//! that is not listed here; the authorization test (`host/tests/authorization.rs`) walks this
//! list against the real binary, checks each route's access rule, and checks that every
//! method not listed for a path is refused. A route cannot be added without saying who may
//! call it, and without that being tested.

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, metrics, the web page's static files.
    Public,
    /// A user's JWT (`Authorization: Bearer`, or `?token=` for the WebSocket); the answer only
    /// ever holds that user's data.
    User,
    /// The admin token (`TASKHOST_ADMIN_TOKEN`); without one configured the routes answer 404.
    Admin,
    /// The Dapr sidecar: `dapr-api-token` must match `APP_API_TOKEN` when it is set; outside
    /// Dapr mode the routes answer 404.
    DaprApp,
    /// Development sign-in: only on a host that signs with the development secret (`--dev`
    /// without `TASKHOST_JWT_SECRET`); everywhere else 404.
    Dev,
}

#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The path as axum matches it (`{param}`, `{*rest}`).
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub access: Access,
}

const fn r(path: &'static str, methods: &'static [&'static str], access: Access) -> Route {
    Route {
        path,
        methods,
        access,
    }
}

use Access::*;

pub const ROUTES: &[Route] = &[
    r("/api/tasks", &["GET", "POST"], User),
    r("/api/tasks/{id}", &["GET", "PATCH", "DELETE"], User),
    r("/api/tasks/{id}/complete", &["POST"], User),
    r("/api/audit-logs/user/{user_id}", &["GET"], User),
    r("/api/audit-logs/{task_id}", &["GET"], User),
    r("/api/notifications", &["GET"], User),
    r("/api/reminders", &["GET"], User),
    r("/ws", &["GET"], User),
    r("/healthz", &["GET"], Public),
    r("/readyz", &["GET"], Public),
    r("/metrics", &["GET"], Public),
    r("/admin/components", &["GET"], Admin),
    r("/admin/components/{name}", &["PUT"], Admin),
    r("/admin/components/{name}/rollback", &["POST"], Admin),
    r("/admin/components/{name}/candidate", &["PUT"], Admin),
    r("/admin/components/{name}/shadow", &["GET"], Admin),
    r("/admin/components/{name}/canary", &["POST"], Admin),
    r("/admin/components/{name}/promote", &["POST"], Admin),
    r("/admin/dead-letters", &["GET"], Admin),
    r("/admin/dead-letters/replay", &["POST"], Admin),
    r("/admin/dead-letters/{id}/replay", &["POST"], Admin),
    r("/", &["GET"], Public),
    r("/ui/{*path}", &["GET"], Public),
    r("/api/dev", &["GET"], Dev),
    r("/api/dev/token", &["POST"], Dev),
    r("/dapr/subscribe", &["GET"], DaprApp),
    r("/dapr/events/{topic}", &["POST"], DaprApp),
    r("/dapr/sockets/{topic}", &["POST"], DaprApp),
    r("/dapr/dead-letters/{topic}", &["POST"], DaprApp),
    r("/job/{name}", &["POST"], DaprApp),
];

/// `path`, if [`ROUTES`] lists it. Routers are built with this, so that an unlisted route
/// stops the host at start-up instead of going out unchecked.
///
/// # Panics
/// When `path` is not in [`ROUTES`].
pub fn at(path: &'static str) -> &'static str {
    assert!(
        ROUTES.iter().any(|r| r.path == path),
        "route {path} is not listed in api::routes::ROUTES: add it with its access rule \
         (and the authorization test will check it)"
    );
    path
}
