//! CPU time of a process (all its threads), from `/proc/<pid>/stat`: what the "CPU per
//! delivery" figures divide. Resolution is one clock tick (10 ms with the usual CLK_TCK of
//! 100); a measured window of seconds keeps that under a percent.

use anyhow::Context;

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds `pid` has used so far, all threads included.
pub fn seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count the fields after its closing paren.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ')' in /proc/<pid>/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let tick = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/<pid>/stat")?
            .parse::<f64>()?)
    };
    Ok((tick(11)? + tick(12)?) / TICKS_PER_SECOND)
}

/// CPU seconds the calling thread has used so far (nanosecond resolution): what a loop on
/// one thread costs, without the time other processes took the core from it.
pub fn thread_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer and a clock id every Linux has.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// CPU seconds of this process so far.
pub fn own_seconds() -> anyhow::Result<f64> {
    seconds(std::process::id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_its_own_cpu_time() {
        let before = super::own_seconds().unwrap();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(120) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let after = super::own_seconds().unwrap();
        assert!(after - before >= 0.05, "{before} → {after}");
    }
}
