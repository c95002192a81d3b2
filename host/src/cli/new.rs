//! `taskhost new NAME --lang rust|python|javascript`: writes a ready consumer project — the
//! handler with `describe` and `handle` doing a small working example, the host's own WIT, a
//! test, a README and the `taskhost.toml` that `taskhost build` reads. The templates
//! (`host/templates/<language>/`) and the WIT are embedded in the binary.

use super::project::{Language, PROJECT_FILE};
use crate::domain::topics;
use crate::runtime::{load::validate_manifest, wit};
use anyhow::{Context, bail};
use clap::Args;
use rust_embed::Embed;
use std::path::{Path, PathBuf};

/// The host's own contract: a new project builds against exactly what this host runs.
const WIT: &str = include_str!("../../../wit/events.wit");

#[derive(Embed)]
#[folder = "templates/"]
struct Templates;

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The component's name (lowercase [a-z0-9_-]): what its describe() says, and what the
    /// host routes, lists and swaps it by.
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    pub lang: Language,
    /// The topics it consumes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = topics::TASK_EVENTS)]
    pub topics: Vec<String>,
    /// Where to write the project (default: ./NAME). Must not exist, or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Writes the project and says what to do next.
pub fn run(args: NewArgs) -> anyhow::Result<()> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let written = write_project(&args, &dir)?;
    eprintln!(
        "wrote a {} consumer `{}` in {} ({written} files). Next:\n  cd {}\n  taskhost build                 \
         # builds dist/{}.wasm and checks it as the host checks a push\n  \
         then see README.md: test it, run it with wasmtime, push it to a running host",
        args.lang.as_str(),
        args.name,
        dir.display(),
        dir.display(),
        args.name,
    );
    Ok(())
}

/// Writes every file of the language's template, filled in, and the WIT; returns how many.
pub fn write_project(args: &NewArgs, dir: &Path) -> anyhow::Result<usize> {
    // The name and topics must pass the very check the host makes on load.
    validate_manifest(&wit::Manifest {
        name: args.name.clone(),
        version: "0.1.0".into(),
        topics: args.topics.clone(),
    })
    .map_err(anyhow::Error::msg)?;
    if args.lang == Language::Rust && args.name.starts_with(|c: char| c.is_ascii_digit()) {
        bail!(
            "a Rust crate's name cannot start with a digit: `{}`",
            args.name
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty: choose another --dir",
            dir.display()
        );
    }
    let prefix = format!("{}/", args.lang.as_str());
    let mut count = 0;
    for path in Templates::iter().filter(|p| p.starts_with(&prefix)) {
        let file = Templates::get(&path).expect("an embedded template lists only its files");
        let text = std::str::from_utf8(&file.data)
            .with_context(|| format!("template {path} is not UTF-8"))?;
        write(dir, &target_name(&path[prefix.len()..]), &fill(text, args))?;
        count += 1;
    }
    write(dir, "wit/events.wit", WIT)?;
    debug_assert!(dir.join(PROJECT_FILE).is_file());
    Ok(count + 1)
}

/// A template's file name in the project: `.tmpl` keeps a template's `Cargo.toml` from being
/// taken for a crate of the taskhost workspace, and dot files are stored without their dot.
fn target_name(template: &str) -> String {
    let name = template.strip_suffix(".tmpl").unwrap_or(template);
    match name {
        "gitignore" => ".gitignore".into(),
        other => other.into(),
    }
}

/// Fills in `{{name}}`, `{{topics}}` (a list of string literals, valid in all three
/// languages) and `{{topics_text}}` (for the README).
fn fill(text: &str, args: &NewArgs) -> String {
    let quoted: Vec<String> = args.topics.iter().map(|t| format!("\"{t}\"")).collect();
    let listed: Vec<String> = args.topics.iter().map(|t| format!("`{t}`")).collect();
    text.replace("{{name}}", &args.name)
        .replace("{{topics}}", &quoted.join(", "))
        .replace("{{topics_text}}", &listed.join(", "))
}

fn write(dir: &Path, relative: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, lang: Language, topics: &[&str]) -> NewArgs {
        NewArgs {
            name: name.into(),
            lang,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            dir: None,
        }
    }

    #[test]
    fn each_language_gets_its_files_filled_in() {
        for (lang, handler) in [
            (Language::Rust, "src/lib.rs"),
            (Language::Python, "app.py"),
            (Language::Javascript, "app.js"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let project = dir.path().join("p");
            write_project(
                &args("greeter", lang, &["task-events", "reminders"]),
                &project,
            )
            .unwrap();
            let code = std::fs::read_to_string(project.join(handler)).unwrap();
            assert!(code.contains(r#""greeter""#), "{lang:?}: {code}");
            assert!(
                code.contains(r#"["task-events", "reminders"]"#)
                    || code.contains(r#"&["task-events", "reminders"]"#),
                "{lang:?}: {code}"
            );
            assert!(
                !code.contains("{{"),
                "{lang:?}: a placeholder is left: {code}"
            );
            assert_eq!(
                std::fs::read_to_string(project.join("wit/events.wit")).unwrap(),
                WIT
            );
            let toml = std::fs::read_to_string(project.join(PROJECT_FILE)).unwrap();
            assert!(
                toml.contains(&format!("language = \"{}\"", lang.as_str())),
                "{toml}"
            );
            assert!(project.join(".gitignore").is_file());
            assert!(project.join("README.md").is_file());
        }
    }

    #[test]
    fn names_and_topics_follow_the_hosts_rules() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_project(
            &args("Greeter", Language::Python, &["task-events"]),
            dir.path(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        let err =
            write_project(&args("greeter", Language::Python, &["orders"]), dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`orders`, which taskhost cannot decode"),
            "{err}"
        );
    }

    #[test]
    fn a_non_empty_directory_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = write_project(
            &args("greeter", Language::Rust, &["task-events"]),
            dir.path(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("is not empty"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
