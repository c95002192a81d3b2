//! `taskhost invoke`: one event through one component, effects printed as JSON. The same
//! decode and call as the pipeline, without storage: for developing and debugging components.

use crate::config::ComponentArgs;
use crate::runtime::{Runtime, convert, wit};
use crate::wire::{self, time};
use anyhow::{Context, bail};
use chrono::Utc;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;

pub fn invoke(
    component: &Path,
    topic: &str,
    event: &Path,
    now: Option<&str>,
    args: &ComponentArgs,
) -> anyhow::Result<Value> {
    let payload = if event == Path::new("-") {
        let mut s = Vec::new();
        std::io::stdin()
            .read_to_end(&mut s)
            .context("reading the event from standard input")?;
        s
    } else {
        std::fs::read(event)
            .with_context(|| format!("reading the event file {}", event.display()))?
    };
    let now = match now {
        Some(s) => time::parse(s)
            .map_err(anyhow::Error::msg)
            .context("--now")?,
        None => Utc::now(),
    };
    let runtime = Runtime::new(args.runtime_config()?)?;
    let loaded = runtime.load_file(component)?;
    if !loaded.topics.iter().any(|t| t == topic) {
        eprintln!(
            "note: {} does not subscribe to {topic} (it subscribes to {})",
            loaded.name,
            loaded.topics.join(", ")
        );
    }
    let message = wire::decode(topic, &payload, now)?;
    let Some(wit_message) = convert::message_to(&message) else {
        bail!(
            "this {topic} message is handled by the host itself, not by a component: {message:?}"
        );
    };
    let answer = runtime.call(&loaded, topic, &wit_message, now.timestamp_millis())?;
    let component_info =
        json!({ "name": loaded.name, "version": loaded.version, "digest": loaded.digest });
    Ok(match answer {
        Ok(effects) => {
            let effects = effects
                .into_iter()
                .map(convert::effect_from)
                .collect::<Result<Vec<_>, _>>();
            match effects {
                Ok(mut effects) => {
                    // As the pipeline does: what the WIT cannot carry, from the message.
                    message.carry_into(&mut effects);
                    let effects: Vec<Value> = effects.iter().map(effect_json).collect();
                    json!({ "component": component_info, "ok": effects })
                }
                Err(reason) => bail!("the component returned an invalid effect: {reason}"),
            }
        }
        Err(wit::Failure::Retry(r)) => json!({ "component": component_info, "retry": r }),
        Err(wit::Failure::Drop(r)) => json!({ "component": component_info, "drop": r }),
    })
}

/// An effect as JSON, using the same shapes as the API and the topics.
pub fn effect_json(e: &crate::domain::Effect) -> Value {
    use crate::domain::Effect::*;
    use crate::wire::event_json::encode_reminder;
    use crate::wire::task_json::TaskJson;
    let opt_time = |t: Option<chrono::DateTime<Utc>>| t.map(|t| time::format(&t));
    match e {
        CreateTask(t) => json!({ "create_task": {
            "idempotency_key": t.idempotency_key, "user_id": t.user_id, "title": t.title,
            "description": t.description, "priority": t.priority, "due_date": opt_time(t.due_date),
            "recurrence": t.recurrence, "tags": t.tags, "reminder_offsets_minutes": t.reminder_offsets_minutes,
            "occurrence": t.occurrence, "series_id": t.series_id }}),
        ScheduleReminder(j) => json!({ "schedule_reminder": {
            "name": j.name, "due_at": time::format(&j.due_at), "reminder": encode_reminder(&j.reminder) }}),
        CancelReminder(name) => json!({ "cancel_reminder": name }),
        CancelRemindersAt(r) => json!({ "cancel_reminders_at": {
            "user_id": r.user_id, "task_id": r.task_id, "due_at": time::format(&r.due_at) }}),
        Notify(n) => json!({ "notify": {
            "idempotency_key": n.idempotency_key, "user_id": n.user_id, "task_id": n.task_id,
            "title": n.title, "body": n.body, "created_at": time::format(&n.created_at),
            "notification_method": n.method.map(|m| m.as_str()) }}),
        AppendAudit(a) => json!({ "append_audit": {
            "event_id": a.event_id, "task_id": a.task_id, "actor": a.actor, "operation": a.operation.as_str(),
            "at": time::format(&a.at), "previous": a.previous.as_ref().map(TaskJson::from),
            "current": a.current.as_ref().map(TaskJson::from),
            "changes": a.changes.iter().map(|c| json!({"field": c.field, "old": c.old, "new": c.new})).collect::<Vec<_>>() }}),
        Broadcast(m) => {
            json!({ "broadcast": { "user_id": m.user_id, "frame": serde_json::from_str::<Value>(&crate::sockets::encode(m)).unwrap_or_default() }})
        }
        Publish(p) => json!({ "publish": { "topic": p.topic, "key": p.key, "payload": p.payload }}),
    }
}
