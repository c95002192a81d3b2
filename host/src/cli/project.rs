//! A consumer project made by `taskhost new`: its `taskhost.toml` says the component's name and
//! language, which is all `taskhost build` needs to know.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The project file, at the project's root.
pub const PROJECT_FILE: &str = "taskhost.toml";

/// The languages a consumer can be written in, each with its toolchain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// cargo + wasm32-wasip2 + wit-bindgen
    Rust,
    /// componentize-py
    Python,
    /// componentize-js
    #[value(alias = "js")]
    Javascript,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Javascript => "javascript",
        }
    }
}

/// `taskhost.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    name: String,
    language: Language,
    /// The directory of the WIT package, relative to the project (default `wit`): a project
    /// inside the taskhost repository points at the repository's own `wit/`.
    wit: Option<PathBuf>,
}

/// A project, read and checked.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub name: String,
    pub language: Language,
    pub wit: PathBuf,
}

impl Project {
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(PROJECT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} has no {PROJECT_FILE}: is it a project made by `taskhost new`? \
                 (taskhost build [DIR] builds the project in DIR, default the current directory)",
                dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let file: ProjectFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid project file", path.display()))?;
        let wit = dir.join(file.wit.unwrap_or_else(|| PathBuf::from("wit")));
        if !wit.is_dir() {
            bail!(
                "{} has no WIT directory {}: `taskhost new` writes the host's contract there",
                dir.display(),
                wit.display()
            );
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name: file.name,
            language: file.language,
            wit,
        })
    }

    /// Where the built component goes unless `--out` says otherwise.
    pub fn default_output(&self) -> PathBuf {
        self.dir.join("dist").join(format!("{}.wasm", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(toml: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("wit")).unwrap();
        if let Some(text) = toml {
            std::fs::write(dir.path().join(PROJECT_FILE), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_project_file_names_the_component_and_its_language() {
        let dir = project(Some("name = \"greeter\"\nlanguage = \"javascript\"\n"));
        let p = Project::read(dir.path()).unwrap();
        assert_eq!(
            (p.name.as_str(), p.language),
            ("greeter", Language::Javascript)
        );
        assert_eq!(p.wit, dir.path().join("wit"));
        assert_eq!(p.default_output(), dir.path().join("dist/greeter.wasm"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let none = project(None);
        let err = Project::read(none.path()).unwrap_err().to_string();
        assert!(
            err.contains("has no taskhost.toml") && err.contains("taskhost new"),
            "{err}"
        );
        let go = project(Some("name = \"greeter\"\nlanguage = \"go\"\n"));
        let err = format!("{:#}", Project::read(go.path()).unwrap_err());
        assert!(err.contains("unknown variant `go`"), "{err}");
        let elsewhere = project(Some(
            "name = \"a\"\nlanguage = \"rust\"\nwit = \"nowhere\"\n",
        ));
        let err = Project::read(elsewhere.path()).unwrap_err().to_string();
        assert!(err.contains("has no WIT directory"), "{err}");
    }
}
