//! Where a workload's store lives: a SQLite file in its data directory (the
//! default), or, with `--store postgres://...`, a fresh database of its own on that
//! PostgreSQL server, created for the workload and dropped after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use refract::store::{Location, OpenOptions, Store};
use sqlx::Connection;

/// The backend every workload of a run uses.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in each workload's data directory.
    Sqlite,
    /// A database per workload on this PostgreSQL server (its URL).
    Postgres {
        /// The server's URL; its database is where `CREATE DATABASE` runs.
        server: String,
    },
}

impl Backend {
    /// The backend for `--store`: none is SQLite; a URL must be a PostgreSQL one.
    pub fn from_arg(store: Option<&str>) -> anyhow::Result<Self> {
        let Some(url) = store else {
            return Ok(Self::Sqlite);
        };
        match Location::parse(url)? {
            Location::Postgres(server) => Ok(Self::Postgres { server }),
            Location::Sqlite(_) => bail!(
                "--store takes a PostgreSQL server URL (postgres://user@host:port/db); \
                 SQLite is the default"
            ),
        }
    }

    /// The label every result carries: `sqlite` or `postgres`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// The store's location for the report (the server URL without a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite => "a SQLite file per workload".into(),
            Self::Postgres { server } => format!("a database per workload on {}", redacted(server)),
        }
    }

    /// A new, empty store for the workload `name`, with `dir/name` as its data
    /// directory (components, artifact cache, and the SQLite file).
    pub async fn create(&self, dir: &Path, name: &str) -> anyhow::Result<Db> {
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        match self {
            Self::Sqlite => Ok(Db::sqlite(data_dir)),
            Self::Postgres { server } => {
                let db = database_name(name);
                admin(
                    server,
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                )
                .await?;
                admin(server, &format!("CREATE DATABASE {db}")).await?;
                Ok(Db::postgres(data_dir, server, db))
            }
        }
    }
}

/// One workload's store: its data directory and where the events are.
#[derive(Debug)]
pub struct Db {
    /// The data directory (a daemon's `--data-dir`).
    pub data_dir: PathBuf,
    /// Where the store is.
    pub location: Location,
    /// The daemon's `--store` URL; `None` for the data directory's SQLite file.
    pub url: Option<String>,
    /// The server and the database to drop when done (PostgreSQL).
    owned: Option<(String, String)>,
}

impl Db {
    fn sqlite(data_dir: PathBuf) -> Self {
        Self {
            location: Location::Sqlite(data_dir.join("refract.db")),
            data_dir,
            url: None,
            owned: None,
        }
    }

    fn postgres(data_dir: PathBuf, server: &str, db: String) -> Self {
        let url = with_database(server, &db);
        Self {
            data_dir,
            location: Location::Postgres(url.clone()),
            url: Some(url),
            owned: Some((server.to_owned(), db)),
        }
    }

    /// Whether the store is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.owned.is_some()
    }

    /// Opens the store (migrations run on a new one).
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(refract::store::open(&self.location, &OpenOptions::default()).await?)
    }

    /// An untouched copy in `dir/name` (the SQLite files, or a PostgreSQL database
    /// made from this one as its template); no store may have it open.
    pub async fn copy(&self, dir: &Path, name: &str) -> anyhow::Result<Db> {
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        match &self.owned {
            None => {
                for file in ["refract.db", "refract.db-wal", "refract.db-shm"] {
                    let from = self.data_dir.join(file);
                    if from.exists() {
                        std::fs::copy(&from, data_dir.join(file))
                            .with_context(|| format!("copying {}", from.display()))?;
                    }
                }
                Ok(Db::sqlite(data_dir))
            }
            Some((server, from)) => {
                let db = database_name(name);
                admin(
                    server,
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                )
                .await?;
                admin(server, &format!("CREATE DATABASE {db} TEMPLATE {from}")).await?;
                Ok(Db::postgres(data_dir, server, db))
            }
        }
    }

    /// Bytes the store takes on disk (the SQLite file, or the database's size).
    pub async fn size_bytes(&self) -> anyhow::Result<u64> {
        match &self.owned {
            None => Ok(std::fs::metadata(self.data_dir.join("refract.db")).map_or(0, |m| m.len())),
            Some((server, db)) => {
                let mut conn = sqlx::PgConnection::connect(server).await?;
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
                    .bind(db)
                    .fetch_one(&mut conn)
                    .await?;
                let _ = conn.close().await;
                Ok(size.max(0) as u64)
            }
        }
    }

    /// Drops the PostgreSQL database (the store must be closed); a SQLite file stays
    /// in the run's temporary directory, removed with it.
    pub async fn finish(self) {
        if let Some((server, db)) = &self.owned
            && let Err(e) = admin(
                server,
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            )
            .await
        {
            eprintln!("could not drop the benchmark database {db}: {e:#}");
        }
    }
}

/// A database name for workload `name` of this process: letters, digits and `_`.
fn database_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("refract_bench_{}_{clean}", std::process::id())
}

/// The URL without its password (`user:secret@` becomes `user:***@`).
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Runs one statement on the server's own database (`CREATE` / `DROP DATABASE`).
async fn admin(server: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .with_context(|| format!("connecting to {}", redacted(server)))?;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .with_context(|| sql.to_owned())?;
    let _ = conn.close().await;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_names_the_workload_database() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert!(database_name("hotswap-cold-0").ends_with("_hotswap_cold_0"));
    }

    #[test]
    fn store_urls_pick_the_backend() {
        assert_eq!(
            Backend::from_arg(None).map(|b| b.label()).ok(),
            Some("sqlite")
        );
        let pg = Backend::from_arg(Some("postgres://postgres@127.0.0.1:55432/postgres"));
        assert_eq!(pg.map(|b| b.label()).ok(), Some("postgres"));
        assert!(Backend::from_arg(Some("sqlite:x.db")).is_err());
    }
}
