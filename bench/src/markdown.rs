//! `docs/benchmarks.md`: the generated part (date, machine, commands, the table, per-stage
//! detail) above a marker; whatever is below the marker (the analysis, written by hand) is kept
//! from the existing file, so a new run refreshes the figures without losing the explanation.

use crate::report::Report;
use std::fmt::Write as _;
use std::path::Path;

pub const MARKER: &str =
    "<!-- Everything below this line is written by hand and kept by taskhost-bench. -->";

pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let kept = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_once(MARKER).map(|(_, tail)| tail.to_string()))
        .unwrap_or_else(|| "\n\n## Analysis\n\n(not written yet)\n".into());
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `taskhost-bench` (`bench/`) on {} ({} mode, {:.0} s). Every figure comes from a \
         measurement in this run, and each is printed beside a reference measured in the same run \
         on the same machine; the ratio is what to compare between runs (`docs/benchmarks.json` \
         has the raw figures).\n",
        report.date, report.mode, report.seconds
    );
    let _ = writeln!(md, "## Machine\n");
    for (k, v) in &report.machine {
        let _ = writeln!(md, "- {k}: {v}");
    }
    let _ = writeln!(
        md,
        "- load average (1/5/15 min) before the run: {}, after: {}\n",
        report.load[0].1, report.load[1].1
    );
    let _ = writeln!(
        md,
        "## How it was run\n\n```sh\n{}\n# the runner, exactly:\n{}\n```\n",
        report.command, report.argv
    );
    let _ = writeln!(md, "## Results\n\n{}", report.table());
    let _ = writeln!(md, "### Per-message stages (µs, p50 / p99)\n");
    let _ = writeln!(
        md,
        "| component | decode | store + instance + call | effects | total | floor total |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for r in report
        .rows
        .iter()
        .filter(|r| r.id.starts_with("host_cost."))
    {
        let s = |side: &str, stage: &str| {
            let v = &r.raw[side][stage];
            format!(
                "{:.1} / {:.1}",
                v["p50_us"].as_f64().unwrap_or(f64::NAN),
                v["p99_us"].as_f64().unwrap_or(f64::NAN)
            )
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.id.trim_start_matches("host_cost."),
            s("taskhost", "decode"),
            s("taskhost", "store_instance_call"),
            s("taskhost", "effects"),
            s("taskhost", "total"),
            s("floor", "total"),
        );
    }
    let _ = write!(md, "\n{MARKER}{kept}");
    std::fs::write(path, md)?;
    Ok(())
}
