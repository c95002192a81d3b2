//! What the run was measured on, for the report: cores, CPU model, memory, kernel, rustc, and
//! the load average (other work on a shared machine moves every absolute number).

fn cmd(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| format!("unknown ({program} failed)"))
}

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn describe() -> Vec<(String, String)> {
    vec![
        ("nproc".into(), cmd("nproc", &[])),
        ("CPU".into(), proc_field("/proc/cpuinfo", "model name")),
        ("RAM".into(), proc_field("/proc/meminfo", "MemTotal")),
        ("kernel".into(), cmd("uname", &["-sr"])),
        ("rustc".into(), cmd("rustc", &["--version"])),
    ]
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
