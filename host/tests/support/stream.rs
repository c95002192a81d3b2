//! A steady stream of task writes from several users, as real clients send them, for the tests
//! that break the parts around a running host (`e2e_faults.rs`, the soak).
//!
//! Each user has its own writer: it creates tasks (plain ones with the default reminders, daily
//! series, tasks whose one reminder falls due within seconds, undated ones), renames them and
//! completes them, one write every `pace`. The writers talk to a fixed address (the stack's app
//! port), so they keep going across host restarts: a write that gets no answer is sent again
//! until one comes, as a client would. Such a write may have happened the first time (a create
//! may then exist twice, a completion answers 409), so what the components must have done is
//! derived from the database afterwards ([`super::ledger`]), never assumed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::json;
use tokio::task::JoinHandle;

use super::{Api, User};

/// What kind of task a create makes.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Due in three days, default reminders (24 h and 1 h before): two jobs in the scheduler.
    Plain,
    /// A daily series due in two days: completing it makes the next instance, with its jobs.
    Recurring,
    /// Due within seconds ([`Profile::remind_soon_secs`]), reminded 1 minute before: the stream's
    /// are due in 65–80 s (63–70 s with `TASKHOST_FAULTS_SHORT`), so the reminder falls due
    /// 5–20 s (3–10 s) after the write.
    RemindSoon,
    /// No due date, no reminders.
    Undated,
}

#[derive(Clone, Debug)]
pub enum Op {
    Create { title: String, kind: Kind },
    Update { id: String, title: String },
    Complete { id: String },
}

/// How a writer picks and shapes its writes: the stream's and the crash loop's differ in the
/// mix only, not in how a write is sent and acknowledged.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The kind of each create, by a roll of `0..10`.
    pub kinds: [Kind; 10],
    /// Seconds from the write to a [`Kind::RemindSoon`] task's due date.
    pub remind_soon_secs: Range<i64>,
    /// The most open tasks a writer keeps (`usize::MAX`: no bound).
    pub max_open: usize,
    /// Whether a 503 (a host that is starting) counts as no answer, sent again, rather than as
    /// an unexpected answer.
    pub retry_unavailable: bool,
}

impl Profile {
    /// The stream's mix: reminders that fall due within seconds are frequent, and a long stream
    /// leaves at most 40 tasks open per writer.
    pub fn stream() -> Self {
        use Kind::*;
        Self {
            kinds: [
                Plain, Plain, Plain, Recurring, Recurring, Recurring, RemindSoon, RemindSoon,
                Undated, Undated,
            ],
            remind_soon_secs: if short() { 63..70 } else { 65..80 },
            max_open: 40,
            retry_unavailable: true,
        }
    }
}

/// One user's writes: its own RNG, the tasks it knows, the write whose answer was lost, and
/// what the host acknowledged. The stream's [`Writer`] and the crash loop's clients drive it,
/// each with its own loop.
pub struct Writes {
    pub user: User,
    rng: fastrand::Rng,
    profile: Profile,
    /// Tasks this writer created and has not completed (as far as it knows).
    open: Vec<String>,
    /// The write whose answer was lost, to be sent again until one comes.
    pending: Option<Op>,
    /// Whether `pending` was sent at least once (so a 409 on a completion means it happened).
    pending_sent: bool,
    pub acked_created: Vec<String>,
    pub acked_completed: Vec<String>,
    /// The last acknowledged title of each task (titles carry a version number).
    pub acked_titles: BTreeMap<String, String>,
    seq: usize,
}

impl Writes {
    pub fn new(user: User, seed: u64, profile: Profile) -> Self {
        Self {
            user,
            rng: fastrand::Rng::with_seed(seed),
            profile,
            open: Vec::new(),
            pending: None,
            pending_sent: false,
            acked_created: Vec::new(),
            acked_completed: Vec::new(),
            acked_titles: BTreeMap::new(),
            seq: 0,
        }
    }

    /// The write whose answer was lost, if any: it is to be sent again.
    pub fn pending(&self) -> Option<&Op> {
        self.pending.as_ref()
    }

    /// A new write (none is pending).
    pub fn fresh_op(&mut self) -> Op {
        self.pending_sent = false;
        self.next_op()
    }

    fn next_op(&mut self) -> Op {
        self.seq += 1;
        let roll = self.rng.u32(0..100);
        // A writer with many open tasks completes one: the tasks (and their reminder jobs)
        // a long stream leaves open stay bounded.
        let roll = if self.open.len() >= self.profile.max_open {
            99
        } else {
            roll
        };
        if self.open.len() < 3 || roll < 45 {
            // `u32`, not `usize`: the same draw as before, so a seed replays the same writes.
            let kind = self.profile.kinds[self.rng.u32(0..10) as usize];
            return Op::Create {
                title: format!("{} task {} v0", self.user.id, self.seq),
                kind,
            };
        }
        let index = self.rng.usize(0..self.open.len());
        let id = self.open[index].clone();
        if roll < 65 {
            Op::Update {
                title: format!("{} task {} v{}", self.user.id, self.seq, self.seq),
                id,
            }
        } else {
            self.open.swap_remove(index);
            Op::Complete { id }
        }
    }

    /// Sends `op` through `api` and records what was acknowledged; `Err` when no answer came
    /// (the host is down or was killed), and `op` stays pending.
    pub async fn attempt(&mut self, api: &Api, op: Op) -> Result<(), String> {
        self.pending = Some(op.clone());
        let sent = self.send(api, &op).await;
        self.pending_sent = true;
        if sent.is_ok() {
            self.pending = None;
        }
        sent
    }

    async fn send(&mut self, api: &Api, op: &Op) -> Result<(), String> {
        let now = Utc::now();
        let reply = match op {
            Op::Create { title, kind } => {
                let body = match kind {
                    Kind::Plain => {
                        json!({"title": title, "due_date": at(now + chrono::Duration::days(3))})
                    }
                    Kind::Recurring => json!({"title": title,
                        "due_date": at(now + chrono::Duration::days(2)),
                        "is_recurring": true, "recurrence_frequency": "daily"}),
                    Kind::RemindSoon => json!({"title": title,
                        "due_date": at(now + chrono::Duration::seconds(self.rng.i64(self.profile.remind_soon_secs.clone()))),
                        "reminder_offsets_minutes": [1]}),
                    Kind::Undated => json!({"title": title}),
                };
                api.try_send(Method::POST, "/api/tasks", Some(&body))
                    .await?
            }
            Op::Update { id, title } => {
                api.try_send(
                    Method::PATCH,
                    &format!("/api/tasks/{id}"),
                    Some(&json!({"title": title})),
                )
                .await?
            }
            Op::Complete { id } => {
                api.try_send(Method::POST, &format!("/api/tasks/{id}/complete"), None)
                    .await?
            }
        };
        let status = reply.status.as_u16();
        match op {
            Op::Create { title, .. } if status == 201 => {
                let id = reply.value()["id"].as_str().expect("a task id").to_owned();
                self.acked_created.push(id.clone());
                self.acked_titles.insert(id.clone(), title.clone());
                self.open.push(id);
            }
            Op::Update { id, title } if status == 200 => {
                self.acked_titles.insert(id.clone(), title.clone());
            }
            // A completion sent again whose first attempt had committed.
            Op::Complete { id } if status == 200 || (status == 409 && self.pending_sent) => {
                self.acked_completed.push(id.clone());
            }
            // A host that is starting may answer before it can take writes.
            _ if status == 503 && self.profile.retry_unavailable => {
                return Err(format!("{}: 503 {}", reply.request, reply.text));
            }
            _ => panic!(
                "{} as {}: unexpected answer {status}: {}",
                reply.request, self.user.id, reply.text
            ),
        }
        Ok(())
    }
}

/// One user's writer in the stream: its writes, sent to a fixed address at a steady pace.
pub struct Writer {
    pub writes: Writes,
    api: Api,
    /// Acknowledged writes.
    pub acked: usize,
    /// Attempts that got no answer (the host was down or was killed under them).
    pub unanswered: usize,
}

impl Writer {
    fn new(user: User, addr: SocketAddr, seed: u64) -> Self {
        let api = Api::at(&format!("http://{addr}"))
            .with_header("authorization", &format!("Bearer {}", user.token));
        Self {
            writes: Writes::new(user, seed, Profile::stream()),
            api,
            acked: 0,
            unanswered: 0,
        }
    }

    /// Writes one op every `pace` (on a fixed schedule, so the rate does not depend on the
    /// answer times) until `stop` is set; then finishes the write in flight.
    async fn run(mut self, pace: Duration, stop: Arc<AtomicBool>, acked: Arc<AtomicUsize>) -> Self {
        // Writers start spread over one pace, not all at once.
        let mut next = tokio::time::Instant::now() + pace.mul_f64(self.writes.rng.f64());
        tokio::time::sleep_until(next).await;
        loop {
            let op = match self.writes.pending().cloned() {
                Some(op) => op,
                None if stop.load(Ordering::Relaxed) => return self,
                None => self.writes.fresh_op(),
            };
            match self.writes.attempt(&self.api, op).await {
                Ok(()) => {
                    self.acked += 1;
                    acked.fetch_add(1, Ordering::Relaxed);
                    next += pace;
                    let now = tokio::time::Instant::now();
                    if next + pace < now {
                        // Far behind (the host was away): go on from now rather than burst.
                        next = now;
                    }
                    tokio::time::sleep_until(next).await;
                }
                Err(_) => {
                    self.unanswered += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// `TASKHOST_FAULTS_SHORT`: the short form of the fault suite (CI).
pub fn short() -> bool {
    std::env::var("TASKHOST_FAULTS_SHORT").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The running writers.
pub struct Stream {
    /// The writers' user ids.
    pub users: Vec<String>,
    /// A client of each writer's user, for writes of a test's own next to the stream.
    pub apis: Vec<Api>,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<Writer>>,
}

impl Stream {
    /// Starts one writer per user against the host at `addr`, each writing once per `pace`.
    pub async fn start(addr: SocketAddr, users: usize, seed: u64, pace: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        let mut ids = Vec::new();
        let mut apis = Vec::new();
        for i in 0..users {
            let writer = Writer::new(User::new().await, addr, seed.wrapping_add(i as u64 + 1));
            ids.push(writer.writes.user.id.clone());
            apis.push(writer.api.clone());
            workers.push(tokio::spawn(writer.run(pace, stop.clone(), acked.clone())));
        }
        Self {
            users: ids,
            apis,
            stop,
            acked,
            workers,
        }
    }

    /// Acknowledged writes so far, all users together.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops the writers once their writes in flight are answered (a writer whose host is down
    /// waits for it to come back), and returns what each had acknowledged.
    pub async fn stop(self) -> Vec<Writer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut writers = Vec::new();
        for w in self.workers {
            writers.push(w.await.expect("a writer panicked"));
        }
        writers
    }
}
