//! The toolchains that turn a project's sources into a component, pinned and installed from the
//! package registries once, under `~/.cache/taskhost/toolchains`.
//!
//! The installing is done by `scripts/install-component-toolchains.sh` — the same script CI and
//! `just setup-toolchains` run — embedded here so that the binary alone can set a user up. It
//! prints where each toolchain is; versions are pinned there and nowhere else.

use super::project::Language;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const INSTALL_SCRIPT: &str = include_str!("../../../scripts/install-component-toolchains.sh");

/// An installed toolchain.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub language: Language,
    /// Where its commands are (for Rust: cargo's directory).
    pub dir: PathBuf,
}

impl Toolchain {
    /// The toolchain for `language`, installed first if it is missing (minutes, once).
    pub fn ensure(language: Language) -> anyhow::Result<Self> {
        let output = Command::new("bash")
            .arg("-c")
            .arg(INSTALL_SCRIPT)
            .arg("install-component-toolchains")
            .arg(language.as_str())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("running bash to install the toolchain (is bash installed?)")?;
        if !output.status.success() {
            bail!(
                "the {} toolchain could not be installed (the reason is above)",
                language.as_str()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let dir = stdout
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{}\t", language.as_str())))
            .with_context(|| format!("the toolchain installer said nothing usable: {stdout:?}"))?;
        Ok(Self {
            language,
            dir: PathBuf::from(dir),
        })
    }

    /// What identifies this toolchain's output in the build cache: its pinned version (part of
    /// its directory's name) or, for Rust, the project's own rust-toolchain.toml (hashed with
    /// the sources).
    pub fn id(&self) -> String {
        match self.language {
            Language::Rust => "rust".into(),
            _ => self
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The command that builds a component.
    pub fn command(&self) -> Command {
        match self.language {
            Language::Rust => Command::new(self.dir.join("cargo")),
            Language::Python => Command::new(self.dir.join("bin/componentize-py")),
            Language::Javascript => {
                Command::new(self.dir.join("node_modules/.bin/componentize-js"))
            }
        }
    }
}
