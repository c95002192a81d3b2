//! The embedded sink: hands outbox rows straight to the pipeline (embedded mode, no sidecar).
//! The pipeline records what fails for good; the relay retries the rest.

use super::relay::OutboxSink;
use crate::pipeline::{Answer, Attempt, Pipeline, Received};
use crate::storage::outbox::OutboxRow;

pub struct InProcessSink {
    pipeline: Pipeline,
}

impl InProcessSink {
    pub fn new(pipeline: Pipeline) -> Self {
        Self { pipeline }
    }
}

#[async_trait::async_trait]
impl OutboxSink for InProcessSink {
    async fn forward(&self, row: &OutboxRow, attempt: Attempt) -> Answer {
        let received = Received {
            topic: &row.topic,
            payload: row.payload.as_bytes(),
            id: None,
        };
        self.pipeline.handle(received, attempt).await.answer
    }
}
