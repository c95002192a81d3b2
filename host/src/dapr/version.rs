//! Which Dapr runtime taskhost needs, and the check of the sidecar's version once it answers.
//!
//! taskhost calls the Jobs API through its stable endpoints (`/v1.0/jobs`), which daprd serves
//! from 1.18 on. An older sidecar still delivers and publishes events, so it is not refused; but
//! every reminder job call would fail, so the host says so once, loudly, at start-up, instead of
//! leaving the operator to find it in the dead letters.

use super::client::{JOBS_PATH, Sidecar};

/// The oldest Dapr runtime (major, minor) whose API taskhost uses in full.
pub const MIN_DAPR: (u64, u64) = (1, 18);

/// How a reported runtime version compares with [`MIN_DAPR`].
#[derive(Debug, PartialEq, Eq)]
pub enum Compatibility {
    Supported,
    TooOld,
    /// Not a release number (`edge`, a development build, an empty string).
    Unknown,
}

/// Compares a `runtimeVersion` such as `1.18.0` or `1.18.0-rc.2` with [`MIN_DAPR`].
pub fn compatibility(version: &str) -> Compatibility {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let number = |p: Option<&str>| p.and_then(|p| p.parse::<u64>().ok());
    match (number(parts.next()), number(parts.next())) {
        (Some(major), Some(minor)) if (major, minor) >= MIN_DAPR => Compatibility::Supported,
        (Some(_), Some(_)) => Compatibility::TooOld,
        _ => Compatibility::Unknown,
    }
}

/// Asks the sidecar for its version and logs what it means for taskhost.
pub async fn check(sidecar: &Sidecar) {
    let (major, minor) = MIN_DAPR;
    match sidecar.runtime_version().await {
        Ok(Some(version)) => match compatibility(&version) {
            Compatibility::Supported => {
                tracing::info!(dapr_version = %version, "Dapr sidecar version supported")
            }
            Compatibility::TooOld => tracing::error!(
                dapr_version = %version,
                "the Dapr sidecar is older than {major}.{minor}: it does not serve the stable Jobs \
                 API ({JOBS_PATH}), so every reminder job call will fail and be dead-lettered; \
                 events are still delivered and published. Upgrade daprd to {major}.{minor} or newer"
            ),
            Compatibility::Unknown => tracing::warn!(
                dapr_version = %version,
                "cannot tell whether the Dapr sidecar serves the stable Jobs API ({JOBS_PATH}, \
                 Dapr >= {major}.{minor}): its version is not a release number"
            ),
        },
        Ok(None) => tracing::warn!(
            "the Dapr sidecar reports no runtimeVersion in /v1.0/metadata; taskhost needs Dapr \
             >= {major}.{minor} for the stable Jobs API ({JOBS_PATH})"
        ),
        Err(e) => tracing::warn!(error = %e, "could not read the Dapr sidecar's version"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_from_1_18_on_are_supported() {
        for v in [
            "1.18.0",
            "1.18.3",
            "v1.18.0",
            "1.18.0-rc.2",
            "1.19.0",
            "2.0.0",
        ] {
            assert_eq!(compatibility(v), Compatibility::Supported, "{v}");
        }
    }

    #[test]
    fn older_releases_are_too_old() {
        for v in ["1.17.9", "1.16.5", "1.9.0", "0.99.0"] {
            assert_eq!(compatibility(v), Compatibility::TooOld, "{v}");
        }
    }

    #[test]
    fn other_strings_are_unknown() {
        for v in ["edge", "", "unknown", "1", "1.x"] {
            assert_eq!(compatibility(v), Compatibility::Unknown, "{v}");
        }
    }
}
