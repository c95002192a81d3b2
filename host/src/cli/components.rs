//! `taskhost components ...`: the command-line front of the admin API for hot swap. It talks
//! HTTP to a running host, so it works the same on a laptop and against a pod.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ComponentsCommand {
    /// Upload a new version of a component; it serves from the next message on, messages in
    /// flight finish on the old one. Refused (and the old one keeps serving) if it does not
    /// validate.
    Push {
        /// The component's .wasm file.
        file: PathBuf,
        /// The component it replaces (default: the file name without `.wasm`).
        #[arg(long)]
        name: Option<String>,
        /// Do not serve it: run it beside the serving version on every message, compare its
        /// effects, apply none (see `taskhost components shadow NAME`).
        #[arg(long, conflicts_with = "canary")]
        shadow: bool,
        /// Serve it to this percent of the users (a stable slice, by user id), the rest stay on
        /// the serving version.
        #[arg(long, value_name = "PERCENT")]
        canary: Option<u32>,
        #[command(flatten)]
        step: StepArgs,
        #[command(flatten)]
        limits: PushLimits,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show what a shadow found: counts and the newest differences (JSON).
    Shadow {
        /// The component.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Turn a shadow into a canary serving PERCENT of the users (or change a canary's share).
    Canary {
        /// The component.
        name: String,
        /// The share of users it serves, 1 to 100.
        percent: u32,
        #[command(flatten)]
        step: StepArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Make the shadow or canary serve everyone (the replaced version is kept for rollback).
    Promote {
        /// The component.
        name: String,
        #[command(flatten)]
        step: StepArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// End a shadow or canary; without one, serve a kept earlier version again (the newest
    /// one, or `--to`).
    Rollback {
        /// The component.
        name: String,
        /// A kept version: its version string or a digest prefix.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        step: StepArgs,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show each component's serving version, kept versions, counts and recent swaps (JSON).
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Limits of the pushed version, instead of the components directory's `limits.toml` or the
/// host's defaults; at most the host's ceilings.
#[derive(Debug, Clone, Default, Args)]
pub struct PushLimits {
    /// Memory limit of one instance of this version, in MiB (a Python component needs tens).
    #[arg(long)]
    pub memory_mib: Option<usize>,
    /// Call timeout of this version, in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
}

impl PushLimits {
    /// As query parameters of `PUT /admin/components/{name}`.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(mib) = self.memory_mib {
            query.push(("memory_mib", mib.to_string()));
        }
        if let Some(ms) = self.timeout_ms {
            query.push(("call_timeout_ms", ms.to_string()));
        }
        query
    }
}

/// Who takes a step and why: written to the component's journal.
#[derive(Debug, Clone, Default, Args)]
pub struct StepArgs {
    /// Who takes this step (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// Why, in a few words.
    #[arg(long)]
    pub reason: Option<String>,
}

impl StepArgs {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(by) = self.by.clone().or_else(|| std::env::var("USER").ok()) {
            query.push(("by", by));
        }
        if let Some(reason) = &self.reason {
            query.push(("reason", reason.clone()));
        }
        query
    }
}

/// Where the host is and how to prove the right to change it.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The host's base URL.
    #[arg(long, env = "TASKHOST_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The host's admin token (its TASKHOST_ADMIN_TOKEN).
    #[arg(long, env = "TASKHOST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

impl AdminArgs {
    pub(super) fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let Some(token) = &self.admin_token else {
            bail!(
                "no admin token: pass --admin-token or set TASKHOST_ADMIN_TOKEN to the host's admin token"
            );
        };
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        Ok(http.request(method, url).bearer_auth(token))
    }
}

/// Runs one subcommand to completion and prints its result on stdout.
pub fn run(command: ComponentsCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        match command {
            ComponentsCommand::Push {
                file,
                name,
                shadow,
                canary,
                step,
                limits,
                admin,
            } => {
                let name = match name {
                    Some(n) => n,
                    None => file
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .map(String::from)
                        .with_context(|| {
                            format!(
                                "cannot tell the component from {}: pass --name",
                                file.display()
                            )
                        })?,
                };
                let bytes = tokio::fs::read(&file)
                    .await
                    .with_context(|| format!("reading {}", file.display()))?;
                let (path, mut query) = match (shadow, canary) {
                    (false, None) => (format!("/admin/components/{name}"), vec![]),
                    (true, _) => (
                        format!("/admin/components/{name}/candidate"),
                        vec![("mode", "shadow".to_string())],
                    ),
                    (false, Some(percent)) => (
                        format!("/admin/components/{name}/candidate"),
                        vec![("mode", "canary".into()), ("percent", percent.to_string())],
                    ),
                };
                if shadow || canary.is_some() {
                    query.extend(step.query());
                }
                query.extend(limits.query());
                let request = admin
                    .request(&http, reqwest::Method::PUT, &path)?
                    .query(&query)
                    .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                    .body(bytes);
                let answer = send(request, &admin.url).await?;
                if answer.get("candidate").is_some() {
                    eprintln!("{}", describe_candidate(&answer));
                } else {
                    eprintln!("{}", describe_change(&answer));
                }
                print_json(&answer)
            }
            ComponentsCommand::Shadow { name, admin } => {
                let path = format!("/admin/components/{name}/shadow");
                let request = admin.request(&http, reqwest::Method::GET, &path)?;
                print_json(&send(request, &admin.url).await?)
            }
            ComponentsCommand::Canary {
                name,
                percent,
                step,
                admin,
            } => {
                let path = format!("/admin/components/{name}/canary");
                let mut query = step.query();
                query.push(("percent", percent.to_string()));
                let request = admin
                    .request(&http, reqwest::Method::POST, &path)?
                    .query(&query);
                let answer = send(request, &admin.url).await?;
                eprintln!("{}", describe_candidate(&answer));
                print_json(&answer)
            }
            ComponentsCommand::Promote { name, step, admin } => {
                let path = format!("/admin/components/{name}/promote");
                let request = admin
                    .request(&http, reqwest::Method::POST, &path)?
                    .query(&step.query());
                let answer = send(request, &admin.url).await?;
                eprintln!("{}", describe_change(&answer));
                print_json(&answer)
            }
            ComponentsCommand::Rollback {
                name,
                to,
                step,
                admin,
            } => {
                let path = format!("/admin/components/{name}/rollback");
                let mut query = step.query();
                if let Some(to) = &to {
                    query.push(("to", to.clone()));
                }
                let request = admin
                    .request(&http, reqwest::Method::POST, &path)?
                    .query(&query);
                let answer = send(request, &admin.url).await?;
                eprintln!("{}", describe_change(&answer));
                print_json(&answer)
            }
            ComponentsCommand::List { admin } => {
                let request = admin.request(&http, reqwest::Method::GET, "/admin/components")?;
                print_json(&send(request, &admin.url).await?)
            }
        }
    })
}

pub(super) async fn send(request: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach taskhost at {url} (is it running? --url)"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("taskhost answered {status} with a body that is not JSON"))?;
    if !status.is_success() {
        let reason = body["error"].as_str().unwrap_or("(no reason given)");
        bail!("taskhost answered {status}: {reason}");
    }
    Ok(body)
}

/// One line for people: `audit: 0.2.0 (9c1b…) is a canary for 25% of the users`.
fn describe_candidate(answer: &Value) -> String {
    let c = &answer["candidate"];
    let name = answer["name"].as_str().unwrap_or("?");
    let who = format!(
        "{name}: {} ({})",
        c["version"].as_str().unwrap_or("?"),
        c["digest"].as_str().unwrap_or("?").get(..12).unwrap_or("?")
    );
    match c["percent"].as_u64() {
        Some(p) => {
            format!("{who} is a canary for {p}% of the users; the rest stay on the serving version")
        }
        None => format!(
            "{who} shadows the serving version: called on every message, nothing applied \
             (`taskhost components shadow {name}` shows what differs)"
        ),
    }
}

/// One line for people: `audit: 0.1.0 (3f2a…) → 0.2.0 (9c1b…), validated in 12 ms`.
fn describe_change(answer: &Value) -> String {
    let short = |v: &Value| {
        format!(
            "{} ({})",
            v["version"].as_str().unwrap_or("?"),
            v["digest"].as_str().unwrap_or("?").get(..12).unwrap_or("?")
        )
    };
    let name = answer["name"].as_str().unwrap_or("?");
    if answer["unchanged"].as_bool() == Some(true) {
        return format!(
            "{name}: {} is already serving; nothing changed",
            short(&answer["to"])
        );
    }
    let mut line = format!(
        "{name}: {} → {}",
        short(&answer["from"]),
        short(&answer["to"])
    );
    if let Some(ms) = answer["validation_ms"].as_f64().filter(|ms| *ms > 0.0) {
        line.push_str(&format!(", validated in {ms:.0} ms"));
    }
    let limits = &answer["to"]["limits"];
    if let (Some(mib), Some(ms)) = (
        limits["memory_mib"].as_f64(),
        limits["call_timeout_ms"].as_u64(),
    ) {
        line.push_str(&format!("; limits {mib:.0} MiB, {ms} ms"));
    }
    for (key, label) in [
        ("topics_added", "now also consumes"),
        ("topics_removed", "no longer consumes"),
    ] {
        if let Some(topics) = answer[key].as_array().filter(|t| !t.is_empty()) {
            let topics: Vec<&str> = topics.iter().filter_map(Value::as_str).collect();
            line.push_str(&format!("; {label} {}", topics.join(", ")));
        }
    }
    line
}

pub(super) fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
