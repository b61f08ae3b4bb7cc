//! `Projection::MAX_PAGE_SIZE`: declared, refused beyond, and paged by in the harness.

use std::cell::Cell;

use serde::Deserialize;
use serde_json::json;

use crate::engine::{check_page_size, describe};
use crate::testing::given;
use crate::{Documents, Envelope, Projection};

#[derive(Deserialize)]
enum Tick {
    Tick {},
}

thread_local! {
    /// `doc_ids` calls in a row (one page's slice) so far, and the most seen.
    static SLICED: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// Takes two events a call; counts events in one document.
struct Capped;

impl Projection for Capped {
    type Event = Tick;
    type Doc = u32;
    const NAME: &'static str = "capped";
    const VERSION: u32 = 1;
    const DOCUMENTS: Documents = Documents::Custom;
    const MAX_PAGE_SIZE: Option<u32> = Some(2);

    fn doc_ids(_event: &Envelope<Tick>) -> Vec<String> {
        let (run, most) = SLICED.get();
        SLICED.set((run + 1, most.max(run + 1)));
        vec!["all".into()]
    }

    fn create(_id: &str, _event: &Envelope<Tick>) -> Option<u32> {
        SLICED.set((0, SLICED.get().1));
        Some(1)
    }

    fn apply(doc: &mut u32, _event: &Envelope<Tick>) {
        SLICED.set((0, SLICED.get().1));
        *doc += 1;
    }
}

#[test]
fn the_max_page_size_is_declared_checked_and_paged_by() {
    let d = describe::<Capped>();
    assert_eq!((d.documents, d.max_page_size), (Documents::Custom, Some(2)));
    assert!(d.v1_0_options().is_empty(), "1.0.0 cannot say it");

    // Each event counts once, however many documents it touches.
    assert!(check_page_size::<Capped>([7, 8, 7, 8].into_iter()).is_ok());
    let err = check_page_size::<Capped>([7, 8, 9].into_iter()).unwrap_err();
    assert_eq!(
        err.message,
        "the host sent 3 events in one call; capped declares MAX_PAGE_SIZE 2"
    );

    // The test harness hands it pages of two, as a host would.
    let mut events = given();
    for n in 0..5 {
        events = events.event(&format!("s-{n}"), "Tick", json!({}));
    }
    assert_eq!(events.docs::<Capped>()["all"], json!(5));
    assert_eq!(SLICED.get().1, 2);
}
