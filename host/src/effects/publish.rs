//! `publish`: an event for another system, sent through the outbox like every other event.

use crate::domain::OutboundEvent;
use crate::storage::{Conn, Result, outbox};
use chrono::{DateTime, Utc};

pub async fn publish(conn: &mut Conn, e: &OutboundEvent, now: DateTime<Utc>) -> Result<()> {
    outbox::enqueue(conn, &e.topic, &e.key, &e.payload, now.timestamp_millis()).await
}
