//! Open WebSockets by user, and pushing sync messages to them.
//!
//! A push must reach the owner's sockets on every instance, exactly once per socket: with
//! several replicas, a user's sockets may be open on any of them while the change was handled
//! by one. [`fanout`] says how a committed push travels to every instance; [`listener`] is the
//! PostgreSQL side of it.
//!
//! A push never fails a delivery: a socket that is gone or too slow is dropped from the
//! registry and its client reconnects (the old Python service failed deliveries on closed
//! sockets and mutated the list it iterated over).

pub mod fanout;
pub mod listener;

pub use fanout::{Push, SocketFanout};

use crate::domain::{SyncMessage, UserId};
use crate::wire::{task_json::TaskJson, time};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Frames buffered per socket before it counts as too slow.
const SOCKET_BUFFER: usize = 256;

type Frame = std::sync::Arc<str>;
/// Each user's open sockets, by socket id.
type Registry = HashMap<UserId, Vec<(u64, mpsc::Sender<Frame>)>>;

#[derive(Default)]
pub struct SocketHub {
    next_id: AtomicU64,
    sockets: Mutex<Registry>,
}

/// A registered socket; dropping it unregisters.
pub struct Subscription<'a> {
    hub: &'a SocketHub,
    user: UserId,
    id: u64,
    pub frames: mpsc::Receiver<Frame>,
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        self.hub.remove(&self.user, self.id);
    }
}

impl SocketHub {
    pub fn subscribe(&self, user: UserId) -> Subscription<'_> {
        let (tx, rx) = mpsc::channel(SOCKET_BUFFER);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.sockets
            .lock()
            .expect("socket registry poisoned")
            .entry(user.clone())
            .or_default()
            .push((id, tx));
        tracing::debug!(user_id = %user, socket = id, "socket opened");
        crate::metrics::sockets(self.connections());
        Subscription {
            hub: self,
            user,
            id,
            frames: rx,
        }
    }

    fn remove(&self, user: &UserId, id: u64) {
        {
            let mut map = self.sockets.lock().expect("socket registry poisoned");
            if let Some(list) = map.get_mut(user) {
                list.retain(|(i, _)| *i != id);
                if list.is_empty() {
                    map.remove(user);
                }
            }
        }
        crate::metrics::sockets(self.connections());
    }

    /// Closes every socket of this instance (their clients reconnect and reload); returns how
    /// many were open. For when pushes may have been missed.
    pub fn close_all(&self) -> usize {
        let closed = {
            let mut map = self.sockets.lock().expect("socket registry poisoned");
            let n = map.values().map(Vec::len).sum();
            map.clear();
            n
        };
        crate::metrics::sockets(0);
        closed
    }

    /// Open sockets, for readiness pages and metrics.
    pub fn connections(&self) -> usize {
        self.sockets
            .lock()
            .expect("socket registry poisoned")
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Sends to every socket of the message's user; returns how many received it.
    pub fn broadcast(&self, m: &SyncMessage) -> usize {
        // Most task events belong to users with no socket open on this instance: their frame
        // is not encoded at all (it was ~2 % of the host's CPU on the Dapr route). A socket that
        // opens between this look and the push misses this one message, as it would had it
        // opened just after.
        if !self.has_sockets(&m.user_id) {
            return 0;
        }
        self.push_frame(&m.user_id, encode(m).into())
    }

    /// Whether `user` has a socket open on this instance.
    pub fn has_sockets(&self, user: &UserId) -> bool {
        self.sockets
            .lock()
            .expect("socket registry poisoned")
            .contains_key(user)
    }

    /// Sends an encoded frame to every socket of `user` on this instance; returns how many
    /// received it.
    pub fn push_frame(&self, user: &UserId, frame: Frame) -> usize {
        let mut map = self.sockets.lock().expect("socket registry poisoned");
        let Some(list) = map.get_mut(user) else {
            return 0;
        };
        list.retain(|(id, tx)| match tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(user_id = %user, socket = id, reason = %e, "dropping socket that cannot keep up");
                false
            }
        });
        let sent = list.len();
        if list.is_empty() {
            map.remove(user);
        }
        sent
    }
}

/// The compact frame clients receive.
pub fn encode(m: &SyncMessage) -> String {
    json!({
        "type": m.operation.event_type(),
        "task_id": m.task_id,
        "task": m.task.as_ref().map(TaskJson::from),
        "at": time::format(&m.at),
    })
    .to_string()
}
