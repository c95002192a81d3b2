//! `GET /ws?token=<jwt>`: a user's live stream of task changes. Browsers cannot set headers on
//! a WebSocket, hence the token in the query.

use super::AppState;
use super::error::ApiError;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Duration;

const PING_EVERY: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = query
        .ok()
        .and_then(|q| q.0.token)
        .ok_or_else(|| ApiError::unauthorized("missing ?token=<jwt> query parameter"))?;
    let user = state.keys.verify(&token)?;
    Ok(ws.on_upgrade(move |socket| serve(socket, state, user)))
}

async fn serve(socket: WebSocket, state: AppState, user: crate::domain::UserId) {
    let mut subscription = state.hub.subscribe(user.clone());
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            frame = subscription.frames.recv() => match frame {
                Some(text) => {
                    if tx.send(Message::Text(text.as_ref().into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!(user_id = %user, "socket closed");
}
