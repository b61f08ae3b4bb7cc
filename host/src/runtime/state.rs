//! Per-instance host state: WASI (no grants), memory limits, and what the guest
//! reported before it trapped.

use super::clock::GuestClocks;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// What a guest said about its own failure just before trapping.
#[derive(Debug, Clone)]
pub struct PanicReport {
    /// The panic message.
    pub message: String,
    /// The event it was processing.
    pub event_sequence: Option<i64>,
}

/// The data of one component instance's store.
pub struct HostState {
    pub(crate) component: String,
    pub(crate) limits: StoreLimits,
    pub(crate) panic: Option<PanicReport>,
    /// Bytes of `host.log` lines this instance has put in the host's log.
    pub(crate) log_bytes: usize,
    /// Whether the drop of its further log lines has been noted.
    pub(crate) log_capped: bool,
    /// Answers a subscription's imports while it handles a page.
    pub(crate) subscriber: Option<Box<dyn super::subscription_types::SubscriberHost>>,
    /// Answers a projection's lookups while it slices a page (WIT 1.2.0).
    pub(crate) lookups: Option<super::lookup::Lookups>,
    /// Virtual time and seeded randomness, set at the start of each call.
    pub(crate) clocks: GuestClocks,
    /// The current call's ticks and long-lane slot.
    pub(crate) clock: super::cpu::CallClock,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// A fresh state with no WASI grants: no files, network, environment or arguments.
    pub fn new(component: String, limits: StoreLimits) -> Self {
        // No files, environment, arguments or network: a guest that tries gets an
        // error (the builder's defaults, spelled out so a change shows here). Its
        // output goes to the log, capped. Time and chance come from the call (see
        // `clock`), so replays agree and no wait can block the thread.
        let clocks = GuestClocks::new();
        let clock = super::cpu::CallClock::for_team(crate::identity::team_of(&component));
        let wasi = WasiCtxBuilder::new()
            .monotonic_clock(clocks.monotonic())
            .wall_clock(clocks.wall())
            .secure_random(clocks.random())
            .insecure_random(clocks.random())
            .insecure_random_seed(super::clock::insecure_seed(&component))
            .stdout(super::output::GuestOutput::new(&component, "stdout"))
            .stderr(super::output::GuestOutput::new(&component, "stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            component,
            limits,
            panic: None,
            log_bytes: 0,
            log_capped: false,
            subscriber: None,
            lookups: None,
            clocks,
            clock,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl HostState {
    /// The instance's resource table.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
