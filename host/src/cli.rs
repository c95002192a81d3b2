//! The command line: `serve`, `token`, `invoke`, the admin API's clients: `components` (hot
//! swap) and `dead-letters` (list and replay), and writing consumers: `new` and `build`.

pub mod build;
mod build_cache;
pub mod components;
pub mod dead_letters;
pub mod new;
pub mod project;
mod toolchain;

use crate::config::{AuthArgs, ComponentArgs, ServeArgs};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "taskhost",
    version,
    about = "Hosts the Todo system's event consumers as sandboxed WebAssembly components"
)]
pub struct Cli {
    /// Log format: text (default) or json.
    #[arg(long, global = true, env = "TASKHOST_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host: Task API, WebSocket, and the consumers.
    Serve(Box<ServeArgs>),
    /// Print a JWT for a user (for development and tests).
    Token {
        /// The user id (the token's `sub`).
        user_id: String,
        /// Validity in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Run one event through a component and print its effects as JSON (no database).
    Invoke {
        /// The component's .wasm file.
        component: PathBuf,
        /// The topic the event arrived on (task-events, reminders, task-updates).
        #[arg(long)]
        topic: String,
        /// The event JSON file ("-" for standard input).
        #[arg(long)]
        event: PathBuf,
        /// The time to pass as `now` (RFC 3339); default: the current time.
        #[arg(long)]
        now: Option<String>,
        #[command(flatten)]
        components: ComponentArgs,
    },
    /// Manage the components of a running host: list, push a new version (hot swap), roll back.
    #[command(subcommand)]
    Components(components::ComponentsCommand),
    /// List the messages a running host could not handle, and replay them.
    #[command(subcommand)]
    DeadLetters(dead_letters::DeadLettersCommand),
    /// Write a new consumer project in Rust, Python or JavaScript, ready to build and test.
    New(new::NewArgs),
    /// Build a consumer project's .wasm (any language) and check it as the host checks a push.
    Build(Box<build::BuildArgs>),
}
