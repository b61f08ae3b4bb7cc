//! The `refract` command line: `serve` runs the daemon; the other verbs are thin
//! clients of its HTTP API.

mod client;
mod data_dir;
mod dev;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::service::Refract;

/// refract: event-sourcing projections as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "refract", version, about)]
pub struct Cli {
    /// The daemon's API address, for the client commands.
    #[arg(
        long,
        global = true,
        env = "REFRACT_URL",
        default_value = "http://127.0.0.1:4300"
    )]
    url: String,
    /// The API token of your team (or the admin's), when the daemon asks for one.
    #[arg(long, global = true, env = "REFRACT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Where and how the daemon runs.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Data directory (database, components, compiled artifacts).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A TOML config file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The store: `postgres://user@host/database`, or the data directory's SQLite
    /// file when not given.
    #[arg(long, env = "REFRACT_STORE", hide_env_values = true)]
    store: Option<String>,
    /// This node's id among several on one PostgreSQL store (default: host name
    /// and process id).
    #[arg(long)]
    node_id: Option<String>,
}

impl ServeArgs {
    /// The config file (or the defaults) with the flags applied over it.
    fn config(self) -> anyhow::Result<Config> {
        let mut cfg = match self.config {
            Some(path) => Config::load(&path)?,
            None => Config::default(),
        };
        if let Some(d) = self.data_dir {
            cfg.data_dir = d;
        }
        if let Some(l) = self.listen {
            cfg.listen = l;
        }
        if let Some(s) = self.store {
            cfg.store = Some(s);
        }
        if let Some(n) = self.node_id {
            cfg.cluster.node_id = Some(n);
        }
        Ok(cfg)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the daemon: event store, projections and HTTP API.
    Serve(ServeArgs),
    /// Runs the daemon and hot-reloads components whose .wasm files change: the same
    /// version is replaced in place and re-projected, a new version is deployed beside.
    Dev {
        #[command(flatten)]
        serve: ServeArgs,
        /// Component files or directories to watch (default: target/wasm32-wasip2/release
        /// and target/wasm32-wasip1/release).
        paths: Vec<PathBuf>,
    },
    /// Appends events to a stream.
    Append(client::AppendArgs),
    /// Deploys components (.wasm files).
    Deploy {
        /// The component files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Make a version deployed beside a live one live once it has caught up.
        #[arg(long)]
        auto_promote: bool,
        /// Replace the code of the deployed version of the same name and version,
        /// keeping its documents and progress (a hotfix, e.g. before replaying its
        /// dead letters).
        #[arg(long, conflicts_with = "auto_promote")]
        replace: bool,
    },
    /// Shows every projection version with its progress.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints one document of a projection.
    Get {
        /// The projection's name.
        name: String,
        /// The document's id.
        id: String,
        /// A named collection of the projection instead of its default one.
        #[arg(long)]
        collection: Option<String>,
        /// A specific version instead of the live one.
        #[arg(long)]
        version: Option<u32>,
        /// Wait until the version has projected this sequence (an append's
        /// `last_sequence`) before reading.
        #[arg(long)]
        after: Option<i64>,
        /// How long to wait for `--after`, in milliseconds (default 5,000).
        #[arg(long, requires = "after")]
        timeout_ms: Option<u64>,
    },
    /// Makes a version the live one (the live one goes to standby: rollback is a promote).
    Promote {
        /// The projection's name.
        name: String,
        /// The version to promote.
        version: u32,
        /// Promote even if it is still catching up.
        #[arg(long)]
        force: bool,
    },
    /// Stops a version and drops its documents (not the live one).
    Retire {
        /// The projection's name.
        name: String,
        /// The version to retire.
        version: u32,
    },
    /// Stops any version (live included) until `resume`, keeping its documents and
    /// progress: the brake for a runaway component. Survives a daemon restart.
    Pause {
        /// The projection's or subscription's name.
        name: String,
        /// The version.
        version: u32,
    },
    /// Runs a paused version again from its stored progress.
    Resume {
        /// The projection's or subscription's name.
        name: String,
        /// The version.
        version: u32,
    },
    /// Rebuilds a version from the first event (documents and progress start empty),
    /// or with `--stream`, only the documents one stream's events touch, in place.
    Rebuild {
        /// The projection's name.
        name: String,
        /// The version.
        version: u32,
        /// Rebuild only the documents this stream's events touch (a repair after
        /// a fixed build), from every event that touches them.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Replays a subscription version from a position (its effects keep their
    /// idempotency keys and message ids, so nothing fires twice by accident).
    Rewind {
        /// The subscription's name.
        name: String,
        /// The version.
        version: u32,
        /// Replay the events after this sequence (default: from the beginning).
        #[arg(long, conflicts_with = "at")]
        to: Option<i64>,
        /// Replay from the first event recorded at or after this RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
    },
    /// Lists a version's dead letters (events it gave up on), or applies them again
    /// after a fixed build is deployed.
    DeadLetters {
        /// The projection's name.
        name: String,
        /// The version.
        version: u32,
        /// Apply them again through the version's running code.
        #[arg(long)]
        replay: bool,
    },
    /// Prints a stream's events.
    Stream {
        /// The stream's id.
        id: String,
    },
    /// Prints a projection's documents, one JSON line each, in id order.
    Docs {
        /// The projection's name.
        name: String,
        /// A named collection of the projection instead of its default one.
        #[arg(long)]
        collection: Option<String>,
        /// Only ids starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Only documents whose top-level field holds a value: `field:value`.
        #[arg(long = "where")]
        filter: Option<String>,
        /// A specific version instead of the live one.
        #[arg(long)]
        version: Option<u32>,
    },
}

/// Parses the command line and runs it.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let api = client::Client::new(&cli.url, cli.token.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve(args.config()?, None).await,
        Command::Dev { serve: args, paths } => serve(args.config()?, Some(&paths)).await,
        Command::Append(args) => api.append(args).await,
        Command::Deploy {
            files,
            auto_promote,
            replace,
        } => api.deploy(&files, auto_promote, replace).await,
        Command::Status { json } => api.status(json).await,
        Command::Get {
            name,
            id,
            collection,
            version,
            after,
            timeout_ms,
        } => {
            let doc = (collection.as_deref(), id.as_str());
            api.get_doc(&name, doc, version, after, timeout_ms).await
        }
        Command::Stream { id } => api.stream(&id).await,
        Command::Docs {
            name,
            collection,
            prefix,
            filter,
            version,
        } => {
            let collection = collection.map(|c| format!("collection={}", client::encode(&c)));
            let prefix = prefix.map(|p| format!("prefix={}", client::encode(&p)));
            let filter = filter.map(|w| format!("where={}", client::encode(&w)));
            let query = [collection, prefix, filter].into_iter().flatten().collect();
            api.docs(&name, query, version).await
        }
        Command::Promote {
            name,
            version,
            force,
        } => {
            api.lifecycle(
                &name,
                version,
                if force {
                    "promote?force=true"
                } else {
                    "promote"
                },
            )
            .await
        }
        Command::Retire { name, version } => api.lifecycle(&name, version, "retire").await,
        Command::Rebuild {
            name,
            version,
            stream: None,
        } => api.lifecycle(&name, version, "rebuild").await,
        Command::Rebuild {
            name,
            version,
            stream: Some(stream),
        } => {
            let action = format!("rebuild?stream={}", client::encode(&stream));
            api.lifecycle(&name, version, &action).await
        }
        Command::Pause { name, version } => api.lifecycle(&name, version, "pause").await,
        Command::Resume { name, version } => api.lifecycle(&name, version, "resume").await,
        Command::DeadLetters {
            name,
            version,
            replay: true,
        } => api.lifecycle(&name, version, "dead-letters/replay").await,
        Command::DeadLetters { name, version, .. } => api.dead_letters(&name, version).await,
        Command::Rewind {
            name,
            version,
            to,
            at,
        } => {
            let query = match at {
                Some(at) => format!("rewind?at={}", client::encode(&at)),
                None => format!("rewind?to={}", to.unwrap_or(0)),
            };
            api.lifecycle(&name, version, &query).await
        }
    }
}

/// Runs the daemon until Ctrl-C or SIGTERM, then stops the agents cleanly; with
/// `watch`, it hot-reloads the components found there (development mode).
pub async fn serve(config: Config, watch: Option<&[PathBuf]>) -> anyhow::Result<()> {
    // Held until the process ends: one daemon per data directory.
    let _lock = data_dir::lock(&config.data_dir)?;
    let config = Config {
        data_dir_locked: true,
        ..config
    };
    let svc = Refract::open(&config).await?;
    if let Some(paths) = watch {
        dev::watch(svc.clone(), paths).await?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %config.data_dir.display(), "refract listening on http://{addr}");
    // Tests and scripts read this line to find the port.
    println!("refract listening on http://{addr}");
    let signalled = Arc::new(tokio::sync::Notify::new());
    let server = axum::serve(listener, crate::api::router(svc.clone())).with_graceful_shutdown({
        let signalled = signalled.clone();
        async move {
            shutdown_signal().await;
            arm_exit_deadline();
            signalled.notify_one();
        }
    });
    // Graceful shutdown waits for requests in flight; one stuck behind a guest
    // call must not hold the daemon.
    tokio::select! {
        served = server => served?,
        _ = async {
            signalled.notified().await;
            tokio::time::sleep(REQUEST_DRAIN).await;
        } => tracing::warn!("requests still running {REQUEST_DRAIN:?} after the signal; closing"),
    }
    if tokio::time::timeout(AGENT_DRAIN, svc.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("agents still stopping {AGENT_DRAIN:?} into shutdown; exiting");
    }
    Ok(())
}

/// How long requests in flight may run on after the shutdown signal.
const REQUEST_DRAIN: Duration = Duration::from_secs(2);
/// How long agents get to finish their page and land their last commit.
const AGENT_DRAIN: Duration = Duration::from_secs(6);
/// After the signal, the process ends by this time whatever is still running: each
/// page is one transaction, so what is cut off is simply done again after restart.
const EXIT_DEADLINE: Duration = Duration::from_millis(9_500);

/// Starts a thread that ends the process [`EXIT_DEADLINE`] after the signal.
fn arm_exit_deadline() {
    let armed = std::thread::Builder::new()
        .name("refract-exit-deadline".into())
        .spawn(|| {
            std::thread::sleep(EXIT_DEADLINE);
            eprintln!("refract: shutdown took longer than {EXIT_DEADLINE:?}; exiting now");
            std::process::exit(1);
        });
    if let Err(e) = armed {
        tracing::error!("cannot arm the shutdown deadline: {e}");
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
