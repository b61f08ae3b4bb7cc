//! Loading a component: compile (or take the cached artifact), tell its kind and WIT
//! version by its exports, link it, ask it what it is (`describe`, in a sandbox
//! under the limits it will run under) and validate the answer. Top layer, with
//! `engine`.

use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::engine::Runtime;
use super::error::{RuntimeError, RuntimeError as E};
use super::guest::Guest;
use super::limits::Limits;
use super::loaded::{Loaded, LoadedComponent, LoadedSubscription};
use super::subscriber::Subscriber;
use super::subscriber_versions::{
    SUBSCRIPTION_EXPORT_V1_0, SUBSCRIPTION_EXPORT_V1_1, SubscriberPre, exported_version,
};
use super::subscription_types::{StartPosition, SubscriptionDescriptor};
use super::types::{ComponentKind, WitVersion, validate_identity};
use super::versions::ProjectorPre;

impl Runtime {
    /// Compiles (or loads from cache), links and describes a component.
    pub fn load(&self, wasm: &[u8]) -> Result<LoadedComponent, RuntimeError> {
        let started = Instant::now();
        let (component, sha256, from_cache) = self.compile_checked(wasm)?;
        let limits = self.limits().clone();
        self.link_projection(&component, sha256, from_cache, started, limits)
    }

    /// Loads a component of either kind, told apart by the interface it exports.
    pub fn load_any(&self, wasm: &[u8]) -> Result<Loaded, RuntimeError> {
        self.load_any_under(wasm, self.limits().clone())
    }

    /// Like [`load_any`](Self::load_any), with `describe` run under `limits` (the
    /// deploying team's) and the component set to run under them.
    pub fn load_any_under(&self, wasm: &[u8], limits: Limits) -> Result<Loaded, RuntimeError> {
        let started = Instant::now();
        let (component, sha256, from_cache) = self.compile_checked(wasm)?;
        let (engine, linker) = self.parts();
        let ty = component.component_type();
        let Some(version) = exported_version(engine, &ty) else {
            return self
                .link_projection(&component, sha256, from_cache, started, limits)
                .map(Loaded::Projection);
        };
        let wrong = |e: wasmtime::Error| E::WrongWorld(format!("{e:#}"));
        let pre = SubscriberPre::new(version, linker.instantiate_pre(&component).map_err(wrong)?)
            .map_err(wrong)?;
        let mut loaded = LoadedSubscription {
            pre,
            descriptor: SubscriptionDescriptor {
                name: String::new(),
                version: 0,
                event_types: Vec::new(),
                start: StartPosition::Beginning,
                effects_during_catch_up: false,
                max_page_size: None,
                wit_version: version,
            },
            sha256,
            from_cache,
            load_time: Duration::ZERO,
            limits,
            slots: None,
        };
        let label = format!("sha256:{}", &loaded.sha256[..12]);
        loaded.descriptor =
            self.describing(|| Subscriber::new(&loaded, label.clone()).describe(version))?;
        let d = &loaded.descriptor;
        if d.max_page_size == Some(0) {
            return Err(E::BadDescriptor(
                "max-page-size is 0; it must be at least 1 (or none)".into(),
            ));
        }
        validate_identity(&d.name, d.version, &d.event_types).map_err(E::BadDescriptor)?;
        loaded.load_time = started.elapsed();
        Ok(Loaded::Subscription(loaded))
    }

    /// Links a compiled component as a projector of its WIT version and describes it.
    fn link_projection(
        &self,
        component: &Component,
        sha256: String,
        from_cache: bool,
        started: Instant,
        limits: Limits,
    ) -> Result<LoadedComponent, RuntimeError> {
        let (engine, linker) = self.parts();
        let version = wit_version(component, engine)?;
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(|e| E::WrongWorld(format!("{e:#}")))?;
        let pre = ProjectorPre::new(version, instance_pre)
            .map_err(|e| E::WrongWorld(format!("WIT {version}: {e:#}")))?;
        let label = format!("sha256:{}", &sha256[..12]);
        // `describe` runs under the limits the component will run under (its team's).
        let descriptor =
            self.describing(|| Guest::for_describe(&pre, &limits, label.clone()).describe())?;
        descriptor.validate().map_err(E::BadDescriptor)?;
        if descriptor.kind != ComponentKind::Projection {
            return Err(E::BadDescriptor(
                "it exports the projection interface but describes itself as a subscription".into(),
            ));
        }
        Ok(LoadedComponent {
            pre,
            descriptor,
            sha256,
            from_cache,
            load_time: started.elapsed(),
            limits,
            slots: None,
        })
    }
}

/// The newest WIT version whose projection export the component has. Export names
/// are matched exactly: wasmtime's semver matching would let a 1.0.0 export stand in
/// for 1.1.0, whose descriptor differs.
fn wit_version(component: &Component, engine: &Engine) -> Result<WitVersion, RuntimeError> {
    let ty = component.component_type();
    let found = WitVersion::SUPPORTED
        .into_iter()
        .find(|v| ty.get_export(engine, v.projection_export()).is_some());
    if let Some(version) = found {
        return Ok(version);
    }
    let wanted: Vec<&str> = WitVersion::SUPPORTED
        .iter()
        .map(|v| v.projection_export())
        .collect();
    let exports: Vec<&str> = ty.exports(engine).map(|(n, _)| n).collect();
    Err(E::WrongWorld(format!(
        "it exports none of {} (refract runs WIT versions {}), nor a subscription ({} or {}); \
         it exports: {}",
        wanted.join(", "),
        WitVersion::SUPPORTED.map(WitVersion::as_str).join(", "),
        SUBSCRIPTION_EXPORT_V1_1,
        SUBSCRIPTION_EXPORT_V1_0,
        if exports.is_empty() {
            "nothing".to_owned()
        } else {
            exports.join(", ")
        }
    )))
}
