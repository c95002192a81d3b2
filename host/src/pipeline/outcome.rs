//! What happened to a message, per component, and what the transport should answer.

/// The transport-level answer (Dapr's `SUCCESS` / `RETRY` / `DROP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    Success,
    /// Transient: deliver again later.
    Retry(String),
    /// Permanent: dead-letter with this reason.
    Drop(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentOutcome {
    /// Effects applied (possibly none).
    Applied {
        effects: usize,
    },
    /// This component had already handled this event: nothing done again.
    Duplicate,
    Retry(String),
    Drop(String),
}

impl ComponentOutcome {
    /// The `outcome` metric label.
    pub fn label(&self) -> &'static str {
        match self {
            ComponentOutcome::Applied { .. } => "applied",
            ComponentOutcome::Duplicate => "duplicate",
            ComponentOutcome::Retry(_) => "retry",
            ComponentOutcome::Drop(_) => "drop",
        }
    }

    /// Why it failed; `None` when it did not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ComponentOutcome::Retry(r) | ComponentOutcome::Drop(r) => Some(r),
            ComponentOutcome::Applied { .. } | ComponentOutcome::Duplicate => None,
        }
    }

    pub fn log(&self) {
        match self {
            ComponentOutcome::Applied { effects } => tracing::debug!(effects, "handled"),
            ComponentOutcome::Duplicate => tracing::debug!("duplicate delivery: already handled"),
            ComponentOutcome::Retry(reason) => tracing::warn!(%reason, "will retry"),
            ComponentOutcome::Drop(reason) => tracing::warn!(%reason, "dropped"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentReport {
    pub component: String,
    pub version: String,
    pub outcome: ComponentOutcome,
}

/// Everything the pipeline did with one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `None` when the message could not be decoded.
    pub event_id: Option<String>,
    /// Set when the message could not be decoded: the reason.
    pub undecodable: Option<String>,
    pub components: Vec<ComponentReport>,
}

impl Report {
    pub fn undecodable(reason: String) -> Self {
        Self {
            event_id: None,
            undecodable: Some(reason),
            components: vec![],
        }
    }

    pub fn decoded(event_id: String) -> Self {
        Self {
            event_id: Some(event_id),
            undecodable: None,
            components: vec![],
        }
    }

    /// One answer for the whole message: any retry wins (components that succeeded will see
    /// the redelivery as a duplicate); then any drop; otherwise success.
    pub fn disposition(&self) -> Disposition {
        if let Some(reason) = &self.undecodable {
            return Disposition::Drop(reason.clone());
        }
        let reasons = |want_retry: bool| -> Vec<String> {
            self.components
                .iter()
                .filter_map(|c| match (&c.outcome, want_retry) {
                    (ComponentOutcome::Retry(r), true) | (ComponentOutcome::Drop(r), false) => {
                        Some(format!("{}@{}: {r}", c.component, c.version))
                    }
                    _ => None,
                })
                .collect()
        };
        let retry = reasons(true);
        if !retry.is_empty() {
            return Disposition::Retry(retry.join("; "));
        }
        let drop = reasons(false);
        if !drop.is_empty() {
            return Disposition::Drop(drop.join("; "));
        }
        Disposition::Success
    }

    /// Components that failed and how, for dead-lettering each one separately.
    pub fn failures(&self) -> impl Iterator<Item = (&ComponentReport, &str)> {
        self.components.iter().filter_map(|c| match &c.outcome {
            ComponentOutcome::Retry(r) | ComponentOutcome::Drop(r) => Some((c, r.as_str())),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcomes: Vec<ComponentOutcome>) -> Report {
        let mut r = Report::decoded("e".into());
        for (i, outcome) in outcomes.into_iter().enumerate() {
            r.components.push(ComponentReport {
                component: format!("c{i}"),
                version: "1".into(),
                outcome,
            });
        }
        r
    }

    #[test]
    fn retry_wins_over_drop_and_drop_over_success() {
        use ComponentOutcome::*;
        assert_eq!(
            report(vec![Applied { effects: 1 }, Duplicate]).disposition(),
            Disposition::Success
        );
        assert!(
            matches!(report(vec![Applied { effects: 0 }, Drop("x".into())]).disposition(), Disposition::Drop(r) if r.contains("c1@1: x"))
        );
        assert!(
            matches!(report(vec![Drop("x".into()), Retry("y".into())]).disposition(), Disposition::Retry(r) if r.contains("y"))
        );
        assert!(
            matches!(Report::undecodable("bad".into()).disposition(), Disposition::Drop(r) if r == "bad")
        );
    }
}
