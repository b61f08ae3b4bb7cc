//! WASI without waiting: the functions of `wasi:clocks/monotonic-clock` and
//! `wasi:io/poll` that would block the thread (wasmtime-wasi's synchronous `poll`
//! blocks in `block_on`, where epoch interruption never fires) are replaced by ones
//! that return at once. A clock pollable is ready when the virtual clock has reached
//! its deadline; a poll with nothing ready moves the virtual clock to the earliest
//! deadline it waits for, so `sleep` returns at once and a loop of sleeps burns CPU
//! time until the call's deadline. A poll that could only be woken by the outside
//! world (no clock among its pollables) traps: nothing outside can happen during a
//! call.

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::io::poll::Host as _;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::runtime::{poll_noop, with_ambient_tokio_runtime};

use super::clock::GuestClocks;
use super::state::HostState;

/// The WASI 0.2 version wasmtime-wasi 48 links its interfaces under; the linker
/// matches every 0.2.x import a guest has against it.
const WASI: &str = "0.2.12";

/// What a poll that can never return in a call says (a trap).
const NEVER_READY: &str = "wasi:io/poll: the guest waits for something that cannot happen \
     during a call (only clocks move inside a call; no input arrives)";

/// Replaces the blocking clock and poll functions of the WASI already on `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(&format!("wasi:clocks/monotonic-clock@{WASI}"))?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, HostState>, (duration,): (u64,)| {
            let state = store.data_mut();
            let deadline = state.clocks.now().saturating_add(duration);
            Ok((sleep_until(state, deadline)?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, HostState>, (when,): (u64,)| {
            Ok((sleep_until(store.data_mut(), when)?,))
        },
    )?;
    let mut poll = linker.instance(&format!("wasi:io/poll@{WASI}"))?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, HostState>, (list,): (Vec<Resource<DynPollable>>,)| {
            let reps: Vec<u32> = list.iter().map(Resource::rep).collect();
            Ok((poll_without_waiting(store.data_mut(), &reps)?,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, HostState>, (one,): (Resource<DynPollable>,)| {
            poll_without_waiting(store.data_mut(), &[one.rep()])?;
            Ok(())
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A pollable ready once the virtual clock reaches `deadline`.
fn sleep_until(state: &mut HostState, deadline: u64) -> wasmtime::Result<Resource<DynPollable>> {
    let sleep = VirtualSleep {
        deadline,
        clocks: state.clocks.clone(),
    };
    let table = state.table();
    let sleep = table.push(sleep)?;
    subscribe(table, sleep)
}

/// The indices of the ready pollables of `reps`; when none is ready, the virtual
/// clock moves to the earliest deadline among them; when there is none, a trap.
fn poll_without_waiting(state: &mut HostState, reps: &[u32]) -> wasmtime::Result<Vec<u32>> {
    if let Some(ready) = poll_once(state, reps)? {
        return Ok(ready);
    }
    let Some(deadline) = state.clocks.wanted() else {
        wasmtime::bail!(NEVER_READY);
    };
    state.clocks.advance_to(deadline);
    match poll_once(state, reps)? {
        Some(ready) => Ok(ready),
        None => wasmtime::bail!(NEVER_READY),
    }
}

/// One non-blocking look at the pollables through wasmtime-wasi's own `poll`.
fn poll_once(state: &mut HostState, reps: &[u32]) -> wasmtime::Result<Option<Vec<u32>>> {
    state.clocks.clear_wanted();
    let list = reps.iter().map(|&rep| Resource::new_borrow(rep)).collect();
    let table = state.table();
    with_ambient_tokio_runtime(|| {
        let future = pin!(table.poll(list));
        poll_noop(future).transpose()
    })
}

/// A guest's sleep on the virtual clock.
struct VirtualSleep {
    deadline: u64,
    clocks: GuestClocks,
}

#[wasmtime_wasi::async_trait]
impl Pollable for VirtualSleep {
    async fn ready(&mut self) {
        poll_fn(|_| {
            if self.clocks.now() >= self.deadline {
                Poll::Ready(())
            } else {
                self.clocks.want(self.deadline);
                Poll::Pending
            }
        })
        .await
    }
}
