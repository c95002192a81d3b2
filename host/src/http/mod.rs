//! What every HTTP way in shares: the list of routes with who may call each
//! ([`routes::ROUTES`]), and the JSON error body ([`error::ApiError`]). The Task API (`api/`)
//! and the Dapr callbacks (`dapr/`) both build on it; neither uses the other.

pub mod error;
pub mod routes;
