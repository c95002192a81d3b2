//! Messages handled side by side that commit together: a wave.
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
//! Nothing is answered earlier than before (a message still waits for its own commit), and a
//! wave holds no connection while it gathers, so a member waiting on the database for its
//! context cannot be blocked by the others.

use super::group_commit::{GroupCommit, Job, Part, PartResult};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A place in a wave, for one message. Dropping it unused says the message commits nothing.
pub struct Seat {
    wave: Option<Arc<Wave>>,
}

struct Wave {
    commit: GroupCommit,
    gathering: Mutex<Gathering>,
}

struct Gathering {
    /// Seats neither taken nor dropped yet.
    open: usize,
    jobs: Vec<Job>,
}

/// `seats` places of one wave, whose jobs go to `commit`'s committers together.
pub(super) fn seats(commit: &GroupCommit, seats: usize) -> Vec<Seat> {
    let wave = Arc::new(Wave {
        commit: commit.clone(),
        gathering: Mutex::new(Gathering {
            open: seats,
            jobs: Vec::with_capacity(seats),
        }),
    });
    (0..seats)
        .map(|_| Seat {
            wave: Some(wave.clone()),
        })
        .collect()
}

impl Seat {
    /// [`GroupCommit::commit`], in this seat's wave: queued with the rest of the wave's jobs
    /// once every seat is taken or left.
    pub(super) async fn commit(
        self,
        event_id: &str,
        now: DateTime<Utc>,
        parts: Vec<Part>,
    ) -> Vec<PartResult> {
        let (job, pending) = Job::new(event_id, now, parts);
        self.take(job);
        pending.results().await
    }

    fn take(mut self, job: Job) {
        if let Some(wave) = self.wave.take() {
            wave.arrive(Some(job));
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(wave) = self.wave.take() {
            wave.arrive(None);
        }
    }
}

impl Wave {
    fn arrive(&self, job: Option<Job>) {
        let ready = {
            // A panic elsewhere while holding this lock left nothing half-done: the list and
            // the count are each updated in one step.
            let mut gathering = self.gathering.lock().unwrap_or_else(|e| e.into_inner());
            gathering.jobs.extend(job);
            gathering.open -= 1;
            if gathering.open > 0 {
                return;
            }
            std::mem::take(&mut gathering.jobs)
        };
        if !ready.is_empty() {
            self.commit.send(ready);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
