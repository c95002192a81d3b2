//! `taskhost dead-letters ...`: the command-line front of the admin API's dead letters.

use super::components::{AdminArgs, print_json, send};
use anyhow::bail;
use clap::Subcommand;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters, newest first (JSON), with their reasons and replay state.
    List {
        /// Only this component's.
        #[arg(long)]
        component: Option<String>,
        /// Only this topic's.
        #[arg(long)]
        topic: Option<String>,
        /// Only this event's.
        #[arg(long)]
        event_id: Option<String>,
        /// pending (not replayed yet), replayed, or all.
        #[arg(long, value_parser = ["pending", "replayed", "all"])]
        status: Option<String>,
        /// Only ids below this one (the last id of the previous page).
        #[arg(long)]
        before: Option<u64>,
        /// At most this many (1..=1000; the host's default is 100).
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Deliver dead letters again: one by id, or every pending one of a component or a topic.
    /// A message the component has handled since is reported as a duplicate and applied no
    /// second time.
    Replay {
        /// The dead letter's id.
        #[arg(required_unless_present_any = ["component", "topic"], conflicts_with_all = ["component", "topic"])]
        id: Option<u64>,
        /// Replay every pending dead letter of this component, oldest first.
        #[arg(long)]
        component: Option<String>,
        /// Replay every pending dead letter of this topic (with --component: of both), those
        /// that name no component included.
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Runs one subcommand to completion and prints the host's answer on stdout.
pub fn run(command: DeadLettersCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?;
        match command {
            DeadLettersCommand::List {
                component,
                topic,
                event_id,
                status,
                before,
                limit,
                admin,
            } => {
                let mut query: Vec<(&str, String)> = Vec::new();
                for (key, value) in [
                    ("component", component),
                    ("topic", topic),
                    ("event_id", event_id),
                    ("status", status),
                    ("before", before.map(|b| b.to_string())),
                    ("limit", limit.map(|l| l.to_string())),
                ] {
                    if let Some(v) = value {
                        query.push((key, v));
                    }
                }
                let request = admin
                    .request(&http, reqwest::Method::GET, "/admin/dead-letters")?
                    .query(&query);
                print_json(&send(request, &admin.url).await?)
            }
            DeadLettersCommand::Replay {
                id,
                component,
                topic,
                admin,
            } => {
                let request = match (id, component, topic) {
                    (Some(id), None, None) => admin.request(
                        &http,
                        reqwest::Method::POST,
                        &format!("/admin/dead-letters/{id}/replay"),
                    )?,
                    (None, component, topic) if component.is_some() || topic.is_some() => {
                        let query: Vec<(&str, String)> =
                            [("component", component), ("topic", topic)]
                                .into_iter()
                                .filter_map(|(k, v)| v.map(|v| (k, v)))
                                .collect();
                        admin
                            .request(&http, reqwest::Method::POST, "/admin/dead-letters/replay")?
                            .query(&query)
                    }
                    _ => {
                        bail!("give a dead letter id, or --component <name> and/or --topic <topic>")
                    }
                };
                let answer = send(request, &admin.url).await?;
                if answer["outcome"] == "failed" {
                    print_json(&answer)?;
                    bail!(
                        "the replay failed again: {}",
                        answer["reason"].as_str().unwrap_or("(no reason given)")
                    );
                }
                print_json(&answer)
            }
        }
    })
}
