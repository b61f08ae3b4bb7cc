//! WIT `refract:projection@1.1.0`: its bindings and host imports, and its answers to
//! `describe` and `describe-settings` in 1.2.0's terms (1.2.0 only adds to 1.1.0's
//! types, so these bindings use 1.2.0's). It has no collections. The page calls are
//! shared (`calls.rs`).

super::bindings::bind_wit!(
    projector "1.1.0" at "../wit/projection-1.1.0",
    types of crate::runtime::since_v1_2, own describe
);

super::host::impl_host!(bindings::refract::projection::host);

/// Asks an instance what it is (`describe`) and how to call it
/// (`describe-settings`).
pub(crate) fn describe(
    bindings: &Projector,
    store: &mut wasmtime::Store<super::state::HostState>,
) -> wasmtime::Result<Described> {
    let calls = bindings.refract_projection_projection();
    let descriptor = calls.call_describe(&mut *store)?;
    Ok((descriptor, calls.call_describe_settings(store)?))
}
