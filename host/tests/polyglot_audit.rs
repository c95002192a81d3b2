//! The audit consumer built three times — Rust (`components/audit`), Python
//! (`components/audit-py`, componentize-py) and JavaScript (`components/audit-js`,
//! componentize-js) — gives the same answer to every recorded message.
//!
//! The messages are what a real host published on `task-events` while its Task API was driven
//! through creations, updates of every field, completions (with the next occurrences the
//! recurrence component created), deletions and awkward text
//! (`components/audit/tests/recorded/`, rewritten by its `record.py`). Each is decoded and
//! converted by the host's own code and handed to each build through the host's runtime, as
//! the pipeline would.
//!
//! The Python and JavaScript builds come from `just build-polyglot` (`<target>/polyglot/`, or
//! `TASKHOST_TEST_POLYGLOT_DIR`); the Rust one from `just build-components`.

mod support;

use std::path::PathBuf;
use taskhost::runtime::{LoadedComponent, Runtime, RuntimeConfig, convert};
use taskhost::wire;

fn recorded() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../components/audit/tests/recorded/task-events.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

fn polyglot_dir() -> PathBuf {
    std::env::var_os("TASKHOST_TEST_POLYGLOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::target_dir().join("polyglot"))
}

fn load(runtime: &Runtime, path: PathBuf) -> LoadedComponent {
    assert!(
        path.is_file(),
        "{} is missing: build it with `just build-polyglot` (Python and JavaScript) or \
         `just build-components` (Rust)",
        path.display()
    );
    runtime
        .load_file(&path)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

#[test]
#[ignore = "needs the Python and JavaScript builds of audit: `just test-polyglot`"]
fn the_three_builds_of_audit_answer_alike_on_recorded_messages() {
    let runtime = Runtime::new(RuntimeConfig {
        // Compiling a Python or JavaScript build takes seconds: keep it for the next run.
        cache_dir: Some(support::target_dir().join("polyglot/compiled")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let builds = [
        (
            "rust",
            load(&runtime, support::components_dir().join("audit.wasm")),
        ),
        (
            "python",
            load(&runtime, polyglot_dir().join("python/audit.wasm")),
        ),
        (
            "javascript",
            load(&runtime, polyglot_dir().join("javascript/audit.wasm")),
        ),
    ];
    for (lang, build) in &builds {
        assert_eq!(
            (build.name.as_str(), build.version.as_str()),
            ("audit", "0.1.0"),
            "the {lang} build describes itself as the Rust one does"
        );
    }

    let messages = recorded();
    assert!(
        messages.len() >= 20,
        "only {} recorded messages",
        messages.len()
    );
    let mut changes = 0;
    for (i, payload) in messages.iter().enumerate() {
        let now = wire::time::now();
        let message = wire::decode("task-events", payload.as_bytes(), now)
            .unwrap_or_else(|e| panic!("recorded message {i} does not decode: {e}\n{payload}"));
        let message = convert::message_to(&message).unwrap_or_else(|| {
            panic!("recorded message {i} is not handed to components\n{payload}")
        });
        let answers: Vec<String> = builds
            .iter()
            .map(|(lang, build)| {
                let answer = runtime
                    .call(build, "task-events", &message, now.timestamp_millis())
                    .unwrap_or_else(|e| panic!("{lang} build, message {i}: {e}\n{payload}"));
                format!("{answer:?}")
            })
            .collect();
        for ((lang, _), answer) in builds.iter().zip(&answers).skip(1) {
            assert_eq!(
                answer, &answers[0],
                "message {i}: the {lang} build answers differently from the Rust build\n{payload}"
            );
        }
        assert!(
            answers[0].starts_with("Ok([Effect::AppendAudit("),
            "message {i}: {}",
            answers[0]
        );
        changes += answers[0].matches("FieldChange").count();
    }
    eprintln!(
        "{} recorded messages ({changes} field changes): the Rust, Python and JavaScript builds answered alike",
        messages.len()
    );

    // Instants no producer sends today, where hand-written date formatting goes wrong first:
    // chrono's first and last representable instants and just beyond, years 0, -1 and 10000
    // (signed, as chrono writes them), a leap day, milliseconds, i64's extremes.
    let first = wire::decode("task-events", messages[0].as_bytes(), wire::time::now()).unwrap();
    let first = convert::message_to(&first).expect("the first recorded message is a task event");
    let edges: [i64; 14] = [
        -8_334_601_228_800_000,
        -8_334_601_228_800_001,
        8_210_266_876_799_999,
        8_210_266_876_800_000,
        253_402_300_800_000,
        253_402_300_799_999,
        -62_135_596_800_001,
        -62_167_219_200_001,
        951_782_400_000, // 2000-02-29
        1,
        -1,
        0,
        i64::MAX,
        i64::MIN,
    ];
    for edge in edges {
        let mut message = first.clone();
        let taskhost::runtime::wit::Message::TaskEvent(event) = &mut message else {
            panic!("the first recorded message is a task event");
        };
        event.task.due_date = Some(edge);
        event.task.completed_at = Some(edge.wrapping_add(250));
        let answers: Vec<String> = builds
            .iter()
            .map(|(lang, build)| {
                let answer = runtime
                    .call(build, "task-events", &message, 0)
                    .unwrap_or_else(|e| panic!("{lang} build, due date {edge}: {e}"));
                format!("{answer:?}")
            })
            .collect();
        for ((lang, _), answer) in builds.iter().zip(&answers).skip(1) {
            assert_eq!(
                answer, &answers[0],
                "due date {edge} ms: the {lang} build answers differently from the Rust build"
            );
        }
    }
}
