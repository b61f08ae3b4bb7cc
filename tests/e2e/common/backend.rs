//! Which store the tests' daemons use: the data directory's SQLite file, or, when
//! `REFRACT_TEST_DATABASE_URL` names a PostgreSQL server, a database of its own per
//! data directory (the same one again when a test restarts a daemon on it). A
//! database whose data directory is gone (its test ended) is dropped by the next
//! daemon started, and the whole throwaway cluster by CI at the end.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Once;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

/// The PostgreSQL server the tests run against, if any.
pub fn server() -> Option<String> {
    std::env::var("REFRACT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether the tests run on PostgreSQL.
pub fn is_postgres() -> bool {
    server().is_some()
}

/// The `--store` URL for a daemon on `data_dir`, creating its database if
/// missing; `None` on SQLite.
pub fn store_url(data_dir: &Path) -> Option<String> {
    let server = server()?;
    let path = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    let name = format!("refract_e2e_{:016x}", h.finish());
    let url = database_url(&server, &name);
    let dir = path.display().to_string();
    blocking(async move {
        static SWEEP: Once = Once::new();
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect to the test server");
        let mut sweep = false;
        SWEEP.call_once(|| sweep = true);
        if sweep {
            drop_orphans(&mut admin).await;
        }
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .expect("look up the test database");
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .expect("create the test database");
            // Where it belongs: a later sweep drops it once the directory is gone.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "COMMENT ON DATABASE {name} IS '{}'",
                dir.replace('\'', "''")
            )))
            .execute(&mut admin)
            .await
            .expect("label the test database");
        }
    });
    Some(url)
}

/// Drops the test databases whose data directory no longer exists.
async fn drop_orphans(admin: &mut PgConnection) {
    let rows = sqlx::query(
        "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d \
         WHERE d.datname LIKE 'refract_e2e_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for row in rows {
        let (Ok(name), Ok(Some(dir))) = (
            row.try_get::<String, _>(0),
            row.try_get::<Option<String>, _>(1),
        ) else {
            continue;
        };
        if !Path::new(&dir).exists() {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
        }
    }
}

/// The URL of database `name` on the server at `server`.
fn database_url(server: &str, name: &str) -> String {
    let base = server.split('?').next().unwrap_or(server);
    let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
    format!("{root}/{name}")
}

/// Runs `f` to completion on a runtime of its own (callers may be inside one).
fn blocking(f: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("database setup");
}

/// The tests' store for an in-process daemon: a SQLite file at `path`, or the
/// PostgreSQL database of `path`'s directory.
pub async fn open_store(path: &Path) -> std::sync::Arc<dyn refract::store::Store> {
    let location = match store_url(path.parent().unwrap_or(path)) {
        Some(url) => refract::store::Location::Postgres(url),
        None => refract::store::Location::Sqlite(path.to_owned()),
    };
    refract::store::open(&location, &refract::store::OpenOptions::default())
        .await
        .expect("open the store")
}
