//! The backend factory: where a store lives decides which backend opens it, and
//! the host gets back only the [`Store`] seam.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DEFAULT_MAX_EVENT_BYTES, Store, StoreError};

/// Where a store lives, and so which backend serves it.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded SQLite database file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its connection URL (the database must exist).
    Postgres(String),
}

impl Location {
    /// Reads a store URL (`sqlite:PATH`, `sqlite://PATH`, `postgres://...`,
    /// `postgresql://...`) or a plain file path (a SQLite file). Any other scheme is
    /// refused by name.
    pub fn parse(url_or_path: &str) -> Result<Self, StoreError> {
        let Some((scheme, rest)) = scheme_of(url_or_path) else {
            if url_or_path.is_empty() {
                return Err(StoreError::Invalid("the store location is empty".into()));
            }
            return Ok(Self::Sqlite(PathBuf::from(url_or_path)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(StoreError::Invalid(format!(
                        "store URL {url_or_path:?} names no database file"
                    )));
                }
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
            "postgres" | "postgresql" => {
                if !rest.starts_with("//") {
                    return Err(StoreError::Invalid(format!(
                        "store URL {:?} is not a postgres://user@host/database URL",
                        redacted(url_or_path)
                    )));
                }
                Ok(Self::Postgres(url_or_path.to_owned()))
            }
            other => Err(StoreError::Invalid(format!(
                "store URL {:?} has an unsupported scheme {other:?} (supported: sqlite, postgres)",
                redacted(url_or_path)
            ))),
        }
    }
}

/// Never shows a password (logs, panics).
impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&redacted(url)).finish(),
        }
    }
}

impl From<PathBuf> for Location {
    /// A plain path is a SQLite file.
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

/// The URL without its password (`user:secret@` becomes `user:***@`), for messages
/// and logs.
pub fn redacted(url: &str) -> String {
    // A password given as a parameter (`?password=...`) goes too.
    let (url, query) = match url.split_once('?') {
        Some((u, q)) => {
            let kept: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            (u, format!("?{}", kept.join("&")))
        }
        None => (url, String::new()),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a URL that is not scheme://...)".to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return format!("{url}{query}"),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{query}"),
        None => format!("{url}{query}"),
    }
}

/// The scheme of a URL and what follows its colon; `None` for a plain path (a
/// one-letter "scheme" is a Windows drive, not a URL).
fn scheme_of(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let url_chars = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (scheme.len() > 1 && starts_with_letter && url_chars).then_some((scheme, rest))
}

/// Settings every backend takes when it opens.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Largest event (data and metadata, in bytes) an append or an emit may carry.
    pub max_event_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// Opens (creating if needed, migrations run) the store at `location`.
pub async fn open(
    location: &Location,
    options: &OpenOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        Location::Sqlite(path) => {
            let store = super::sqlite::SqliteStore::open(path)
                .await?
                .with_max_event_bytes(options.max_event_bytes);
            Ok(Arc::new(store))
        }
        Location::Postgres(url) => {
            let store = super::postgres::PgStore::open(url)
                .await?
                .with_max_event_bytes(options.max_event_bytes);
            Ok(Arc::new(store))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_and_sqlite_urls_are_sqlite_files() {
        let sqlite = |p: &str| Location::Sqlite(PathBuf::from(p));
        let parse = |s: &str| Location::parse(s).expect(s);
        assert_eq!(parse("data/refract.db"), sqlite("data/refract.db"));
        assert_eq!(parse("/var/lib/r.db"), sqlite("/var/lib/r.db"));
        assert_eq!(parse("C:\\data\\r.db"), sqlite("C:\\data\\r.db"));
        assert_eq!(parse("sqlite:r.db"), sqlite("r.db"));
        assert_eq!(parse("sqlite:///var/lib/r.db"), sqlite("/var/lib/r.db"));
        assert_eq!(parse("SQLite://r.db"), sqlite("r.db"));
    }

    #[test]
    fn postgres_urls_are_postgres_databases() {
        let url = "postgres://refract:pw@127.0.0.1:5432/events";
        assert_eq!(
            Location::parse(url).ok(),
            Some(Location::Postgres(url.into()))
        );
        let url = "postgresql://db/events";
        assert_eq!(
            Location::parse(url).ok(),
            Some(Location::Postgres(url.into()))
        );
        assert_eq!(redacted("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redacted("postgres://u@h/db?sslmode=require&password=pw"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        let not_url = Location::parse("postgres:u:pw@h").expect_err("not a URL");
        assert!(!not_url.to_string().contains("pw"), "{not_url}");
        let debug = format!("{:?}", Location::Postgres("postgres://u:pw@h/db".into()));
        assert!(!debug.contains("pw@"), "{debug}");
    }

    #[test]
    fn other_schemes_and_empty_locations_are_refused_by_name() {
        let err = Location::parse("mysql://u:hunter2@db/refract").expect_err("no mysql");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("\"mysql\""), "{err}");
        assert!(
            err.to_string().contains("supported: sqlite, postgres"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("hunter2"),
            "the password is not shown: {err}"
        );
        Location::parse("postgres:refract").expect_err("not a URL");
        Location::parse("").expect_err("empty");
        Location::parse("sqlite://").expect_err("no file");
    }

    #[tokio::test]
    async fn open_gives_a_store_that_closes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::from(dir.path().join("t.db"));
        let store = open(&location, &OpenOptions::default())
            .await
            .expect("open");
        assert_eq!(store.head().await.expect("head"), 0);
        store.close().await;
    }
}
