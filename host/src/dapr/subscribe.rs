//! `GET /dapr/subscribe`: the programmatic subscriptions daprd reads at start-up. One per
//! topic some loaded component consumes, each with a dead-letter topic, plus one for each
//! dead-letter topic so the host records what landed there.

use super::DaprEdge;
use crate::pipeline::dlq_topic;
use serde_json::{Value, json};

/// Largest bulk batch daprd may hand over at once, and how long it waits to fill one.
const BULK_MAX_MESSAGES: u32 = 100;
const BULK_MAX_AWAIT_MS: u32 = 40;

pub fn subscriptions(edge: &DaprEdge, topics: &[String]) -> Value {
    let pubsub = &edge.args.dapr_pubsub;
    let mut subs = Vec::new();
    for topic in topics {
        let mut sub = json!({
            "pubsubname": pubsub,
            "topic": topic,
            "routes": { "default": format!("/dapr/events/{topic}") },
            "deadLetterTopic": dlq_topic(topic),
            "metadata": {},
        });
        if edge.args.dapr_bulk {
            sub["bulkSubscribe"] = json!({
                "enabled": true,
                "maxMessagesCount": BULK_MAX_MESSAGES,
                "maxAwaitDurationMs": BULK_MAX_AWAIT_MS,
            });
        }
        subs.push(sub);
        subs.push(json!({
            "pubsubname": pubsub,
            "topic": dlq_topic(topic),
            "routes": { "default": format!("/dapr/dead-letters/{topic}") },
            "metadata": {},
        }));
    }
    Value::Array(subs)
}
