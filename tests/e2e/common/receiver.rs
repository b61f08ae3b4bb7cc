//! A real local webhook receiver for the outbox tests: refuses the first attempts of
//! every message if asked to, and records every attempt and every accepted message.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// What the receiver has seen.
#[derive(Clone, Default)]
pub struct Receiver {
    /// Attempts per message id.
    pub attempts: Arc<Mutex<HashMap<String, usize>>>,
    /// Accepted messages: (message id, body).
    pub accepted: Arc<Mutex<Vec<(String, Value)>>>,
    refusals: usize,
}

impl Receiver {
    /// Listens on a free local port at `/hooks/incidents`, answering 503 to the first
    /// `refusals` attempts of each message.
    pub async fn start(refusals: usize) -> (Self, SocketAddr) {
        let receiver = Self {
            refusals,
            ..Self::default()
        };
        let app = axum::Router::new()
            .route("/hooks/incidents", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, addr)
    }

    /// The accepted messages so far.
    pub fn accepted(&self) -> Vec<(String, Value)> {
        self.accepted.lock().expect("lock").clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let id = headers
        .get("refract-message-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let n = {
        let mut attempts = r.attempts.lock().expect("lock");
        let n = attempts.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    if n <= r.refusals {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    r.accepted.lock().expect("lock").push((id, body));
    StatusCode::OK
}
