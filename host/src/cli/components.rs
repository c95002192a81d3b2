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
        #[command(flatten)]
        limits: PushLimits,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Serve a kept earlier version again (the newest one, or `--to`).
    Rollback {
        /// The component.
        name: String,
        /// A kept version: its version string or a digest prefix.
        #[arg(long)]
        to: Option<String>,
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
                let request = admin
                    .request(
                        &http,
                        reqwest::Method::PUT,
                        &format!("/admin/components/{name}"),
                    )?
                    .query(&limits.query())
                    .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                    .body(bytes);
                let answer = send(request, &admin.url).await?;
                eprintln!("{}", describe_change(&answer));
                print_json(&answer)
            }
            ComponentsCommand::Rollback { name, to, admin } => {
                let path = format!("/admin/components/{name}/rollback");
                let mut request = admin.request(&http, reqwest::Method::POST, &path)?;
                if let Some(to) = &to {
                    request = request.query(&[("to", to)]);
                }
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
