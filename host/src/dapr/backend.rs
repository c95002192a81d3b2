//! Whether daprd's error answer says that the backend behind one of its building blocks (the
//! Kafka broker behind pub/sub, the Dapr scheduler behind the Jobs API) is away, rather than that
//! the call itself was wrong.
//!
//! The difference decides what the outbox relay does with the row. A call that failed on its own
//! is retried a few times and then dead-lettered (`TASKHOST_MAX_ATTEMPTS`, a few seconds). A
//! backend outage lasts as long as it lasts (a broker restart in a rolling upgrade, a scheduler
//! pod rescheduled): spending the row's attempts on it dead-lettered every event written during
//! a 20 s Kafka outage (found by `host/tests/e2e_faults.rs`). Such rows are held instead, like
//! rows for an unreachable sidecar, without spending attempts, until the backend answers again.
//!
//! The answers below were taken from a real daprd 1.18.0 on the local stack: with the broker
//! SIGKILLed, `POST /v1.0/publish/...` answers 500 `ERR_PUBSUB_PUBLISH_MESSAGE` "... circuit
//! breaker is open" after 2–5 s (sarama's own "client has run out of available brokers" before the
//! breaker opens); with the scheduler stopped, `POST`/`DELETE /v1.0/jobs/{name}` answer 504/500
//! `DAPR_SCHEDULER_SCHEDULE_JOB`/`DAPR_SCHEDULER_DELETE_JOB` "... DeadlineExceeded ... connection
//! refused" after 30 s (the host's 10 s client timeout comes first: the sidecar is then
//! unreachable, which holds the row too).

use reqwest::StatusCode;
use serde_json::Value;

/// What in an error message says the backend is away (not that the request was wrong).
const AWAY: [&str; 11] = [
    "circuit breaker is open",
    "run out of available brokers",
    "connection refused",
    "connection reset",
    "broken pipe",
    "i/o timeout",
    "deadline exceeded",
    "DeadlineExceeded",
    "code = Unavailable",
    "LEADER_NOT_AVAILABLE",
    "NOT_LEADER",
];

/// The backend daprd says is away (`"the pub/sub broker"`, `"the Dapr scheduler"`), if its
/// answer `status` `body` says so.
pub fn unavailable(status: StatusCode, body: &str) -> Option<&'static str> {
    if !status.is_server_error() {
        return None;
    }
    let answer: Value = serde_json::from_str(body).ok()?;
    let code = answer["errorCode"].as_str().unwrap_or_default();
    let message = answer["message"].as_str().unwrap_or_default();
    let backend = if code == "ERR_PUBSUB_PUBLISH_MESSAGE" {
        "the pub/sub broker"
    } else if code.starts_with("DAPR_SCHEDULER_") || code.starts_with("ERR_SCHEDULER_") {
        "the Dapr scheduler"
    } else {
        return None;
    };
    AWAY.iter().any(|m| message.contains(m)).then_some(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// daprd 1.18.0, `POST /v1.0/publish/pubsub-kafka/...` with the broker SIGKILLed.
    const PUBLISH_BROKER_DOWN: &str = r#"{"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE","message":"error when publishing to topic probe-topic in pubsub pubsub-kafka: circuit breaker is open","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","domain":"dapr.io","metadata":{"error":"circuit breaker is open","topic":"probe-topic"},"reason":"DAPR_PUBSUB_PUBLISH_MESSAGE"}]}"#;

    /// daprd 1.18.0, `POST /v1.0/jobs/{name}` with the scheduler stopped (answered 504).
    const SCHEDULE_SCHEDULER_DOWN: &str = r#"{"errorCode":"DAPR_SCHEDULER_SCHEDULE_JOB","message":"failed to schedule job due to: rpc error: code = DeadlineExceeded desc = latest balancer error: connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:50006: connect: connection refused\"","details":[]}"#;

    /// daprd 1.18.0, `DELETE /v1.0/jobs/{name}` with the scheduler stopped (answered 500).
    const DELETE_SCHEDULER_DOWN: &str = r#"{"errorCode":"DAPR_SCHEDULER_DELETE_JOB","message":"failed to delete job due to: rpc error: code = DeadlineExceeded desc = latest balancer error: connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:50006: connect: connection refused\"","details":[]}"#;

    #[test]
    fn a_broker_or_scheduler_outage_is_named() {
        assert_eq!(
            unavailable(StatusCode::INTERNAL_SERVER_ERROR, PUBLISH_BROKER_DOWN),
            Some("the pub/sub broker")
        );
        assert_eq!(
            unavailable(StatusCode::GATEWAY_TIMEOUT, SCHEDULE_SCHEDULER_DOWN),
            Some("the Dapr scheduler")
        );
        assert_eq!(
            unavailable(StatusCode::INTERNAL_SERVER_ERROR, DELETE_SCHEDULER_DOWN),
            Some("the Dapr scheduler")
        );
    }

    #[test]
    fn a_failure_of_the_call_itself_is_not_an_outage() {
        let too_large = r#"{"errorCode":"ERR_PUBSUB_PUBLISH_MESSAGE","message":"error when publishing to topic t in pubsub pubsub-kafka: kafka server: Message was too large, server rejected it to avoid allocation error"}"#;
        let no_pubsub = r#"{"errorCode":"ERR_PUBSUB_NOT_FOUND","message":"pubsub nope not found: connection refused"}"#;
        let bad_job = r#"{"errorCode":"DAPR_SCHEDULER_SCHEDULE_JOB","message":"failed to schedule job due to: invalid dueTime"}"#;
        assert_eq!(
            unavailable(StatusCode::INTERNAL_SERVER_ERROR, too_large),
            None
        );
        assert_eq!(unavailable(StatusCode::NOT_FOUND, no_pubsub), None);
        assert_eq!(
            unavailable(StatusCode::INTERNAL_SERVER_ERROR, bad_job),
            None
        );
        assert_eq!(
            unavailable(StatusCode::BAD_REQUEST, PUBLISH_BROKER_DOWN),
            None,
            "a 4xx is the request's fault"
        );
        assert_eq!(
            unavailable(StatusCode::INTERNAL_SERVER_ERROR, "not json"),
            None
        );
    }
}
