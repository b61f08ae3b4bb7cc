//! Sleeps while it applies events. `Nap { secs }` sleeps once (the virtual clock
//! moves on and the call simply returns) and records what the guest saw of time;
//! `Insomnia` sleeps a second at a time forever: the CPU deadline must stop it, as it
//! stops a busy loop.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

/// The events it reacts to.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Sleepy {
    Nap { secs: u64 },
    Insomnia {},
}

/// What the guest saw while it slept.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Dreams {
    /// Naps taken.
    pub naps: u64,
    /// Seconds the monotonic clock moved during the last nap.
    pub slept_secs: u64,
    /// The wall clock after the last nap, microseconds since the epoch.
    pub wall_micros: i64,
    /// A random number drawn after the last nap.
    pub random: u64,
}

/// The projection.
pub struct Hostile;

impl Projection for Hostile {
    type Event = Sleepy;
    type Doc = Dreams;
    const NAME: &'static str = "hostile-sleep";
    const VERSION: u32 = 1;

    fn create(_id: &str, event: &Envelope<Sleepy>) -> Option<Dreams> {
        let mut doc = Dreams::default();
        Self::apply(&mut doc, event);
        Some(doc)
    }

    fn apply(doc: &mut Dreams, event: &Envelope<Sleepy>) {
        match event.event {
            Sleepy::Nap { secs } => {
                let before = Instant::now();
                std::thread::sleep(Duration::from_secs(secs));
                doc.naps += 1;
                doc.slept_secs = before.elapsed().as_secs();
                doc.wall_micros = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(-1);
                let mut bytes = [0u8; 8];
                // Any failure shows as 0.
                let _ = getrandom(&mut bytes);
                doc.random = u64::from_le_bytes(bytes);
            }
            Sleepy::Insomnia {} => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
        }
    }
}

/// Random bytes through std's hasher keys, which wasm32-wasip2 draws from
/// `wasi:random` (no extra crate needed).
fn getrandom(out: &mut [u8; 8]) -> Result<(), ()> {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(0u8);
    *out = n.to_le_bytes();
    Ok(())
}

refract_guest::export_projection!(Hostile);
