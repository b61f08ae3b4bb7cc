//! One wasmtime `Engine` for the process: component model, epoch interruption (a
//! ticker thread), pooling allocator, the one linker with every host import, and a
//! compiled-artifact cache on disk keyed by the wasm's hash and the engine's
//! compatibility hash. Top layer, with `load` (which adds loading to [`Runtime`]).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::error::{RuntimeError, RuntimeError as E};
use super::limits::{Limits, TICK};
use super::slots::{DESCRIBE_SLOTS, DescribeSlots};
use super::state::HostState;
use super::{subscriber_versions, versions};

/// The process's WebAssembly runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    limits: Limits,
    describes: DescribeSlots,
}

/// Instances the pool holds unless told otherwise (a daemon sizes it to its teams).
pub const DEFAULT_POOL_INSTANCES: usize = 512;

/// The smallest wasm stack the engine runs with (a lower setting is raised to it).
pub const MIN_STACK_BYTES: usize = 64 << 10;

/// How long a `describe` waits for the shared pool to give it an instance.
const DESCRIBE_PATIENCE: Duration = Duration::from_secs(30);

/// What one component instance may take of the pool at most: core instances,
/// memories and tables (a Rust wasip2 component uses about 4, 1 and 2). Sized
/// with room to spare so the pool runs out of whole instances, not of parts.
const CORE_INSTANCES_EACH: u32 = 8;
const MEMORIES_EACH: u32 = 2;
const TABLES_EACH: u32 = 4;

impl Runtime {
    /// Creates the engine; `cache_dir` holds compiled artifacts (none: no cache).
    pub fn new(cache_dir: Option<PathBuf>, limits: Limits) -> Result<Self, RuntimeError> {
        Self::with_pool(cache_dir, limits, DEFAULT_POOL_INSTANCES)
    }

    /// Creates the engine with a pool of `instances` component instances at once
    /// (every team's slots plus those of `describe`).
    pub fn with_pool(
        cache_dir: Option<PathBuf>,
        mut limits: Limits,
        instances: usize,
    ) -> Result<Self, RuntimeError> {
        // One engine for all: the stack limit is the daemon's, not a team's, and the
        // limits quoted in errors are the ones that apply.
        limits.max_stack_bytes = limits.max_stack_bytes.max(MIN_STACK_BYTES);
        let n = u32::try_from(instances.max(1))
            .map_err(|_| E::Host(format!("a pool of {instances} instances is too large")))?;
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // A compilation uses one thread, in the compile lane (`cpu::compiling`):
            // an upload must not take every core from the running guests.
            .parallel_compilation(false)
            .max_wasm_stack(limits.max_stack_bytes);
        let mut pool = PoolingAllocationConfig::default();
        pool.max_memory_size(limits.memory_bytes)
            .total_memories(n.saturating_mul(MEMORIES_EACH))
            .total_tables(n.saturating_mul(TABLES_EACH))
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_EACH))
            .total_component_instances(n)
            .total_stacks(n);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| E::Host(format!("engine: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| E::Host(format!("linking WASI: {e:#}")))?;
        super::nonblocking::add_to_linker(&mut linker)
            .map_err(|e| E::Host(format!("linking WASI without waits: {e:#}")))?;
        versions::add_to_linker(&mut linker)
            .map_err(|e| E::Host(format!("linking host: {e:#}")))?;
        subscriber_versions::add_to_linker(&mut linker)
            .map_err(|e| E::Host(format!("linking the subscription host: {e:#}")))?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| E::Host(format!("creating {}: {e}", dir.display())))?;
        }
        spawn_ticker(&engine);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache_dir,
                limits,
                describes: DescribeSlots::new(DESCRIBE_SLOTS),
            }),
        })
    }

    /// Runs a `describe` under one of the daemon's describe slots, waiting out a
    /// pool that cannot give an instance right now (a host condition, not the
    /// guest's fault: the deploy waits rather than failing).
    pub(super) fn describing<T>(
        &self,
        f: impl FnMut() -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        self.inner.describes.run(DESCRIBE_PATIENCE, f)
    }

    /// Removes the compiled artifacts of the wasm with this hash from the cache (its
    /// last version was retired, or its upload was refused).
    pub fn remove_artifacts(&self, sha256: &str) {
        let Some(dir) = &self.inner.cache_dir else {
            return;
        };
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let prefix = format!("{sha256}-");
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix)
                && let Err(e) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(path = %entry.path().display(), "cannot remove artifact: {e}");
            }
        }
    }

    /// The default limits applied to components.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Checks the header, hashes and compiles (or loads the cached artifact).
    pub(super) fn compile_checked(
        &self,
        wasm: &[u8],
    ) -> Result<(Component, String, bool), RuntimeError> {
        check_header(wasm)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let (component, from_cache) = self.compile(wasm, &sha256)?;
        Ok((component, sha256, from_cache))
    }

    /// The engine and the linker with every host import.
    pub(super) fn parts(&self) -> (&Engine, &Linker<HostState>) {
        (&self.inner.engine, &self.inner.linker)
    }

    pub(super) fn compile(
        &self,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Component, bool), RuntimeError> {
        let engine = &self.inner.engine;
        let cached = self.inner.cache_dir.as_ref().map(|dir| {
            let mut h = DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
        });
        if let Some(path) = cached.as_deref().filter(|p| p.exists()) {
            // SAFETY: the file was written by `Component::serialize` of an engine with
            // the same compatibility hash, into our own data directory.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring bad artifact: {e:#}"),
            }
        }
        let component = super::cpu::compiling(|| Component::new(engine, wasm))
            .map_err(|e| E::NotAComponent(format!("{e:#}")))?;
        if let Some(path) = cached.as_deref()
            && let Err(e) = write_artifact(&component, path)
        {
            tracing::warn!(path = %path.display(), "cannot cache compiled component: {e}");
        }
        Ok((component, false))
    }
}

/// Writes the artifact atomically, so a crash never leaves half a file to load.
fn write_artifact(component: &Component, path: &Path) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    // Unique per write: compiles run outside any lock, so two deploys of the same
    // wasm may write at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// Rejects what is plainly not a component, with a message saying what it is instead.
fn check_header(wasm: &[u8]) -> Result<(), RuntimeError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(E::NotAComponent(
            "it does not start with the WebAssembly magic bytes \\0asm".into(),
        ));
    }
    if wasm[4..8] == [1, 0, 0, 0] {
        return Err(E::NotAComponent(
            "this is a core WebAssembly module, not a component: build the guest with \
             `--target wasm32-wasip2` or `cargo component build`"
                .into(),
        ));
    }
    Ok(())
}

/// Advances the engine's epoch every tick until the engine is dropped.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("refract-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker, call deadlines are off: {e}");
    }
}
