//! A database of its own for each PostgreSQL backend test, on the server
//! `REFRACT_TEST_DATABASE_URL` names; without it the tests skip themselves.

use std::sync::atomic::{AtomicU32, Ordering};

use super::PgStore;
use crate::store::{ProjectionKey, Store};

/// A store in a database of its own on the server `REFRACT_TEST_DATABASE_URL` names.
pub(super) struct Fresh {
    /// The store under test.
    pub store: PgStore,
    /// Its database's URL (for a second connection: a slow writer, another node).
    pub url: String,
    server: String,
    name: String,
}

/// A new database with the migrations run, or `None` (the test is skipped) where
/// no server is named.
pub(super) async fn fresh_store(test: &str) -> Option<Fresh> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(server) = std::env::var("REFRACT_TEST_DATABASE_URL") else {
        eprintln!("{test}: skipped (REFRACT_TEST_DATABASE_URL is not set)");
        return None;
    };
    let name = format!(
        "refract_t_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    admin(&server, &format!("CREATE DATABASE {name}")).await;
    let url = with_database(&server, &name);
    let store = PgStore::open(&url).await.expect("open");
    Some(Fresh {
        store,
        url,
        server,
        name,
    })
}

impl Fresh {
    /// Closes the store and drops its database.
    pub(super) async fn finish(self) {
        self.store.close().await;
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

async fn admin(server: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to the test server");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect(sql);
    let _ = conn.close().await;
}

/// `server` (`postgres://user@host:port/db?options`) naming database `db` instead.
fn with_database(server: &str, db: &str) -> String {
    let (url, query) = match server.split_once('?') {
        Some((u, q)) => (u, format!("?{q}")),
        None => (server, String::new()),
    };
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let base = match url[authority_start..].find('/') {
        Some(i) => &url[..authority_start + i],
        None => url,
    };
    format!("{base}/{db}{query}")
}

/// Creates a version's progress row (what `prepare_subscription` does).
pub(super) async fn start(s: &PgStore, key: &ProjectionKey) {
    let mut conn = s.pool().acquire().await.expect("conn");
    super::progress::insert_progress(&mut conn, key)
        .await
        .expect("progress row");
}

/// A version's (position, events applied), straight from its row.
pub(super) async fn progress_of(s: &PgStore, key: &ProjectionKey) -> (i64, i64) {
    sqlx::query_as("SELECT position, events_applied FROM progress WHERE name = $1 AND version = $2")
        .bind(&key.name)
        .bind(i64::from(key.version))
        .fetch_one(s.pool())
        .await
        .expect("progress")
}

#[test]
fn the_test_database_replaces_the_servers() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h:5432?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
