//! Sleeps a second at a time forever in `describe`: the deploy must be refused within
//! the team's CPU deadline, and nobody else's deploy may wait for it.

use refract_guest::{Envelope, Projection};
use serde::Deserialize;

/// The event it would react to.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub enum Logged {
    IncidentLogged {},
}

/// The projection (never described).
pub struct Hostile;

impl Projection for Hostile {
    type Event = Logged;
    type Doc = u64;
    const NAME: &'static str = "hostile-sleep-describe";
    const VERSION: u32 = 1;

    fn create(_id: &str, _event: &Envelope<Logged>) -> Option<u64> {
        Some(1)
    }

    fn apply(doc: &mut u64, _event: &Envelope<Logged>) {
        *doc += 1;
    }
}

#[cfg(target_arch = "wasm32")]
const _: () = {
    use refract_guest::__glue::{self as glue, wit};

    struct Export;

    impl glue::v1_1::Guest for Export {
        fn describe() -> wit::Descriptor {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }

        fn slice(page: Vec<wit::Event>) -> Result<Vec<wit::DocSlice>, wit::GuestError> {
            glue::slice::<Hostile>(&glue::v1_1::HOST, page)
        }

        fn apply(docs: Vec<wit::DocEvents>) -> Result<Vec<wit::DocChange>, wit::GuestError> {
            glue::apply::<Hostile>(&glue::v1_1::HOST, docs)
        }

        fn describe_settings() -> wit::Settings {
            glue::describe_settings::<Hostile>(&glue::v1_1::HOST)
        }
    }

    refract_guest::bindings::v1_1::export!(Export with_types_in refract_guest::bindings::v1_1);
};
