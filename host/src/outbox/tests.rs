//! The outbox against a real SQLite file and a real local HTTP receiver.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use std::collections::BTreeMap;

use super::*;
use crate::store::sqlite::SqliteStore;
use crate::store::subscription::{HandledPage, NewMessage, SubscriptionStore};
use crate::store::{DocumentStore, ProjectionKey};

fn grants(team: &str, hosts: &[&str]) -> Grants {
    Grants::new(BTreeMap::from([(
        team.to_owned(),
        hosts.iter().map(|h| h.to_string()).collect(),
    )]))
}

#[test]
fn grants_match_host_and_port_and_name_what_is_refused() {
    let g = grants("ops", &["hooks.example.com", "127.0.0.1:8080"]);
    assert_eq!(g.refusal("ops", "https://HOOKS.example.com/x"), None);
    assert_eq!(g.refusal("ops", "http://127.0.0.1:8080/x"), None);
    let wrong_port = g
        .refusal("ops", "http://127.0.0.1:9090/x")
        .expect("refused");
    assert!(
        wrong_port.contains("127.0.0.1:9090") && wrong_port.contains("team ops"),
        "{wrong_port}"
    );
    assert!(
        g.refusal("other", "https://hooks.example.com/").is_some(),
        "grants are per team"
    );
    assert!(
        g.refusal("ops", "ftp://hooks.example.com/")
            .expect("refused")
            .contains("scheme")
    );
    assert!(g.refusal("ops", "not a url").is_some());
    assert!(
        Grants::default()
            .refusal("default", "http://127.0.0.1/")
            .is_some(),
        "nothing by default"
    );
}

/// Answers 503 to the first `fail` requests, then 200; records every request's id.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<String>>>,
    fail: usize,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    let id = headers
        .get(MESSAGE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut seen = r.seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.push(id);
    if seen.len() <= r.fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

#[tokio::test]
async fn a_failing_receiver_gets_the_message_again_with_the_same_id_until_it_accepts() {
    let receiver = Receiver {
        fail: 2,
        ..Receiver::default()
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    let key = ProjectionKey {
        name: "notifier".into(),
        version: 1,
    };
    store.prepare_projection(&key).await.expect("prepare");
    let message = |id: &str, url: String| NewMessage {
        id: id.into(),
        url,
        body: "{\"incident\":\"i-1\"}".into(),
        event_sequence: Some(1),
    };
    let page = HandledPage {
        messages: vec![
            message("notifier/i-1", format!("http://{addr}/hook")),
            message("notifier/i-2", "http://192.0.2.1/hook".into()),
        ],
        ..HandledPage::default()
    };
    store
        .commit_handled(&key, "ops", &page)
        .await
        .expect("commit");
    let store: Arc<dyn Store> = Arc::new(store);
    let g = grants("ops", &[&addr.to_string()]);
    let http = client(&g, DEFAULT_REQUEST_TIMEOUT);
    for _ in 0..100 {
        deliver_pass(store.as_ref(), &g, &http, "ops")
            .await
            .expect("pass");
        if store.outbox_counts(&key).await.expect("counts").pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = receiver.seen.lock().expect("lock").clone();
    assert_eq!(seen, ["notifier/i-1"; 3], "two refusals, then accepted");
    let c = store.outbox_counts(&key).await.expect("counts");
    assert_eq!((c.pending, c.delivered, c.failed), (0, 1, 1));
    assert!(
        store
            .due_messages(i64::MAX, 10)
            .await
            .expect("due")
            .is_empty()
    );
}

#[tokio::test]
async fn a_pass_delivers_only_its_own_teams_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    for team in ["a", "b"] {
        let key = ProjectionKey {
            name: format!("{team}.notifier"),
            version: 1,
        };
        store.prepare_projection(&key).await.expect("prepare");
        let page = HandledPage {
            messages: vec![NewMessage {
                id: format!("{team}/1"),
                url: format!("http://{addr}/hook"),
                body: "{}".into(),
                event_sequence: Some(1),
            }],
            ..HandledPage::default()
        };
        store
            .commit_handled(&key, team, &page)
            .await
            .expect("commit");
    }
    let mut due = store.due_teams(now_micros()).await.expect("teams");
    due.sort();
    assert_eq!(due, ["a", "b"]);
    let g = Grants::new(BTreeMap::from([
        ("a".to_owned(), vec![addr.to_string()]),
        ("b".to_owned(), vec![addr.to_string()]),
    ]));
    let http = client(&g, DEFAULT_REQUEST_TIMEOUT);
    let n = deliver_pass(&store, &g, &http, "a").await.expect("pass");
    assert_eq!(n, 1);
    assert_eq!(*receiver.seen.lock().expect("lock"), ["a/1"]);
    assert_eq!(store.due_teams(now_micros()).await.expect("teams"), ["b"]);
}
