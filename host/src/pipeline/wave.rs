//! Messages handled side by side that commit together: a wave; and one user's messages of a
//! delivery, one wave after another.
//!
//! A bulk delivery hands the host many messages at once, of which it handles one per user at a
//! time (per-user order). Handled each on its own, a message's parts reach the committers when
//! its own calls finish, spread over the time the calls of all of them take, and an idle
//! committer takes each as it comes: a 100-entry bulk through daprd + Kafka made ~11
//! transactions on PostgreSQL, each four round trips (begin, records, effects, commit) of
//! ~0.3 ms when idle and ~1 ms while the calls ran (docs/benchmarks.md, item 25). In a wave,
//! every message's job waits until each of the wave's messages has either queued its job or
//! finished without one (it did not decode, no component consumes it, every call failed),
//! then all go to the committers together: one transaction for the wave, or a few if it holds
//! more than [`MAX_BATCH`](super::group_commit::MAX_BATCH) parts.
//!
//! A user's next message belongs to the next wave, and is chained behind this one
//! ([`Seat::chain`]). It starts as soon as this whole wave is queued, so that its calls — pure
//! functions of the message — run while this wave commits. Everything it does
//! that another could see waits for this one's answer: reading what this one writes (its
//! context, `context.rs`), committing, and any other outcome; and if this one is to be
//! retried, the next is not handled at all but held for its redelivery ([`HeldBehind`]), as
//! when it never started. Each wave is therefore queued only after the previous one is
//! answered, in delivery order per user, exactly as if the waves ran one after another.
//!
//! Nothing is answered earlier than before (a message still waits for its own commit), and a
//! wave holds no connection while it gathers, so a member waiting on the database for its
//! context cannot be blocked by the others.

use super::group_commit::{GroupCommit, Job, Part, PartResult};
use super::verdict::HeldBehind;
use chrono::{DateTime, Utc};
use futures::future::{FutureExt, Shared};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A place in a wave, for one message. Dropping it unused says the message commits nothing.
pub struct Seat {
    wave: Option<Arc<Wave>>,
    /// Told when this seat's whole wave is queued: the same user's next message may start.
    next: Option<oneshot::Sender<()>>,
    /// The same user's previous message, when this one is chained behind it.
    earlier: Option<Earlier>,
}

/// The answer to the same user's previous message, as its successor needs it: `Ok` to go on,
/// or held behind it. Cloned for every place that waits on it.
#[derive(Clone)]
pub struct Earlier(Shared<oneshot::Receiver<Result<(), HeldBehind>>>);

/// Resolves when the earlier message's wave is queued (each of its seats taken or left): the
/// later one may start.
pub struct Started(oneshot::Receiver<()>);

impl Started {
    pub async fn wait(self) {
        // A sender dropped without a word is a seat gone: the same as left.
        let _ = self.0.await;
    }
}

/// What the earlier message's handler reports once it is answered.
pub struct Settle(oneshot::Sender<Result<(), HeldBehind>>);

impl Settle {
    /// The earlier message, called `name` in the reasons (e.g. `entry 7`), was answered:
    /// `retried` says whether it is to be delivered again, which holds the later one too.
    pub fn answered(self, name: &str, retried: bool) {
        let outcome = if retried {
            Err(HeldBehind::new(name))
        } else {
            Ok(())
        };
        // The later message is gone only if its handling was dropped: nothing to tell.
        let _ = self.0.send(outcome);
    }
}

struct Wave {
    commit: GroupCommit,
    gathering: Mutex<Gathering>,
}

struct Gathering {
    /// Seats neither taken nor dropped yet.
    open: usize,
    jobs: Vec<Job>,
    /// The next messages of the wave's users, started once the whole wave is queued: started
    /// earlier, their calls would compete with this wave's last ones for the wasm threads
    /// and delay its commit, which is what they are to overlap.
    next: Vec<oneshot::Sender<()>>,
}

/// `seats` places of one wave, whose jobs go to `commit`'s committers together.
pub(super) fn seats(commit: &GroupCommit, seats: usize) -> Vec<Seat> {
    let wave = Arc::new(Wave {
        commit: commit.clone(),
        gathering: Mutex::new(Gathering {
            open: seats,
            jobs: Vec::with_capacity(seats),
            next: Vec::new(),
        }),
    });
    (0..seats)
        .map(|_| Seat {
            wave: Some(wave.clone()),
            next: None,
            earlier: None,
        })
        .collect()
}

impl Seat {
    /// Chains `later` behind `earlier`, the same user's previous message in a delivery (each
    /// seat of its own wave, `later`'s the next one). The caller starts `later`'s handling
    /// once [`Started`] resolves and reports `earlier`'s answer through [`Settle`].
    pub fn chain(earlier: &mut Seat, later: &mut Seat) -> (Started, Settle) {
        let (started, start) = oneshot::channel();
        let (settle, settled) = oneshot::channel();
        earlier.next = Some(started);
        later.earlier = Some(Earlier(settled.shared()));
        (Started(start), Settle(settle))
    }

    /// Waits for the same user's previous message to be answered, if this one is chained
    /// behind one: `Err` when it is to be retried, so this one must be held.
    pub async fn after_earlier(&self) -> Result<(), HeldBehind> {
        match &self.earlier {
            Some(earlier) => earlier.settled().await,
            None => Ok(()),
        }
    }

    /// The same user's previous message, to wait on after this seat is gone.
    pub fn earlier(&self) -> Option<Earlier> {
        self.earlier.clone()
    }

    /// [`GroupCommit::commit`], in this seat's wave: queued with the rest of the wave's jobs
    /// once every seat is taken or left — and, for a message chained behind an earlier one,
    /// only once that one is answered; `Err` (nothing queued) when it is to be retried.
    pub(super) async fn commit(
        self,
        event_id: &str,
        now: DateTime<Utc>,
        parts: Vec<Part>,
    ) -> Result<Vec<PartResult>, HeldBehind> {
        self.after_earlier().await?;
        let (job, pending) = Job::new(event_id, now, parts);
        self.take(job);
        Ok(pending.results().await)
    }

    fn take(mut self, job: Job) {
        self.leave(Some(job));
    }

    fn leave(&mut self, job: Option<Job>) {
        let next = self.next.take();
        match self.wave.take() {
            Some(wave) => wave.arrive(job, next),
            None => {
                if let Some(next) = next {
                    let _ = next.send(());
                }
            }
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.leave(None);
    }
}

impl Earlier {
    /// Waits for the earlier message's answer: `Err` when it is to be retried.
    pub async fn settled(&self) -> Result<(), HeldBehind> {
        self.0.clone().await.unwrap_or_else(|_| {
            // The earlier message's handling was dropped before its answer: it was not
            // answered, so it will be delivered again; hold this one behind it.
            Err(HeldBehind::new("the previous message"))
        })
    }
}

impl Wave {
    fn arrive(&self, job: Option<Job>, next: Option<oneshot::Sender<()>>) {
        let (ready, next) = {
            // A panic elsewhere while holding this lock left nothing half-done: the lists and
            // the count are each updated in one step.
            let mut gathering = self.gathering.lock().unwrap_or_else(|e| e.into_inner());
            gathering.jobs.extend(job);
            gathering.next.extend(next);
            gathering.open -= 1;
            if gathering.open > 0 {
                return;
            }
            (
                std::mem::take(&mut gathering.jobs),
                std::mem::take(&mut gathering.next),
            )
        };
        if !ready.is_empty() {
            self.commit.send(ready);
        }
        for next in next {
            let _ = next.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::sync::mpsc::error::TryRecvError;

    fn event_ids(item: &[Job]) -> Vec<&str> {
        item.iter().map(Job::event_id).collect()
    }

    #[test]
    fn a_wave_is_queued_once_every_seat_is_taken_or_left() {
        let (commit, mut queued) = GroupCommit::unattended();
        let mut seats = seats(&commit, 3).into_iter();
        let (first, idle, last) = (seats.next(), seats.next(), seats.next());

        first.unwrap().take(Job::for_test("e1", 4));
        assert!(
            matches!(queued.try_recv(), Err(TryRecvError::Empty)),
            "a job waits for the rest of its wave"
        );
        // A message that commits nothing (undecodable, or every call failed) leaves its seat.
        drop(idle);
        assert!(matches!(queued.try_recv(), Err(TryRecvError::Empty)));
        last.unwrap().take(Job::for_test("e3", 4));
        let item = queued.try_recv().expect("the wave is queued");
        assert_eq!(
            event_ids(&item),
            ["e1", "e3"],
            "as one item, in arrival order"
        );
        assert!(matches!(queued.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_wave_whose_seats_are_all_left_queues_nothing() {
        let (commit, mut queued) = GroupCommit::unattended();
        drop(seats(&commit, 2));
        assert!(matches!(queued.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_large_wave_is_queued_in_items_of_at_most_max_batch_parts() {
        let (commit, mut queued) = GroupCommit::unattended();
        let per_job = 4;
        let jobs = super::super::group_commit::MAX_BATCH / per_job + 1;
        for (i, seat) in seats(&commit, jobs).into_iter().enumerate() {
            seat.take(Job::for_test(&format!("e{i}"), per_job));
        }
        let first = queued.try_recv().expect("the first item");
        let second = queued.try_recv().expect("the rest");
        assert_eq!(first.len(), jobs - 1);
        assert_eq!(event_ids(&second), [format!("e{}", jobs - 1)]);
        assert!(first.iter().all(|j| j.part_count() == per_job));
    }

    /// Two one-seat waves of `commit`, the second's seat chained behind the first's: the
    /// earlier seat, the later one, and the earlier message's report.
    fn chained(commit: &GroupCommit) -> (Seat, Seat, Settle) {
        let (mut earlier, mut later) = (seats(commit, 1).remove(0), seats(commit, 1).remove(0));
        let (_started, settle) = Seat::chain(&mut earlier, &mut later);
        (earlier, later, settle)
    }

    #[tokio::test]
    async fn a_chained_message_starts_once_the_earlier_wave_is_queued() {
        let (commit, _queued) = GroupCommit::unattended();
        let (mut first, mut second) = (seats(&commit, 2), seats(&commit, 1));
        let (other, mut earlier, mut later) = (first.remove(1), first.remove(0), second.remove(0));
        let (started, _settle) = Seat::chain(&mut earlier, &mut later);
        let mut started = Box::pin(started.wait());
        earlier.take(Job::for_test("e1", 1));
        assert!(
            (&mut started).now_or_never().is_none(),
            "not before the rest of the earlier wave is queued"
        );
        drop(other);
        assert!(started.now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_chained_message_commits_after_the_earlier_one_is_answered() {
        let (commit, mut queued) = GroupCommit::unattended();
        let (earlier, later, settle) = chained(&commit);
        earlier.take(Job::for_test("e1", 1));
        assert_eq!(
            event_ids(&queued.try_recv().expect("the first wave")),
            ["e1"]
        );
        let committing = tokio::spawn(later.commit("e2", Utc::now(), Vec::new()));
        tokio::task::yield_now().await;
        assert!(
            matches!(queued.try_recv(), Err(TryRecvError::Empty)),
            "not queued before the earlier message is answered"
        );
        settle.answered("entry 1", false);
        let item = tokio::time::timeout(std::time::Duration::from_secs(5), queued.recv())
            .await
            .expect("queued once the earlier one is answered")
            .expect("the queue is open");
        assert_eq!(event_ids(&item), ["e2"]);
        committing.abort();
    }

    #[tokio::test]
    async fn a_chained_message_is_held_when_the_earlier_one_is_to_be_retried() {
        let (commit, mut queued) = GroupCommit::unattended();
        let (earlier, later, settle) = chained(&commit);
        drop(earlier);
        assert!(later.earlier().is_some());
        settle.answered("entry 1", true);
        let held = later
            .commit("e2", Utc::now(), Vec::new())
            .await
            .expect_err("held");
        assert_eq!(
            held.to_string(),
            "held behind entry 1 of the same user, which is to be retried"
        );
        assert!(
            matches!(queued.try_recv(), Err(TryRecvError::Empty)),
            "nothing of a held message is queued"
        );
    }

    #[tokio::test]
    async fn an_earlier_message_gone_without_an_answer_holds_the_later_one() {
        let (commit, _queued) = GroupCommit::unattended();
        let (earlier, later, settle) = chained(&commit);
        drop((earlier, settle));
        assert!(later.after_earlier().await.is_err());
    }
}
