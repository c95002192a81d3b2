//! Which users a canary takes: a stable hash of the user id, so that each user stays on one
//! version for the whole canary (their events keep their order, and no user's history is split
//! between two versions), the same in every process and after every restart.
//!
//! FNV-1a (64 bits) rather than the standard library's hasher: that one is seeded per process,
//! so two replicas (or one after a restart) would put the same user on different versions.

/// The user's bucket, 0 to 99.
pub fn of(user_id: &str) -> u8 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The high bits mix best; 100 divides 2^64 unevenly by a negligible 1e-17.
    ((hash >> 16) % 100) as u8
}

/// Whether a canary at `percent` (1 to 100) takes `user_id`.
pub fn takes(user_id: &str, percent: u8) -> bool {
    of(user_id) < percent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_spread_evenly() {
        assert_eq!(of("alice"), of("alice"));
        // Known value: a change of the function moves users between versions mid-canary
        // across replicas, so it must be deliberate.
        assert_eq!(of(""), ((0xcbf2_9ce4_8422_2325u64 >> 16) % 100) as u8);
        let users = 100_000;
        let taken = (0..users)
            .filter(|i| takes(&format!("user-{i}"), 25))
            .count();
        let share = taken as f64 / users as f64;
        assert!((0.24..0.26).contains(&share), "share {share}");
        assert!((0..1000).all(|i| takes(&format!("u{i}"), 100)));
        assert!((0..1000).all(|i| !takes(&format!("u{i}"), 0)));
    }
}
