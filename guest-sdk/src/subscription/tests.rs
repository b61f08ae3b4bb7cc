//! Paged stream reads, natively.

use serde::Deserialize;
use serde_json::json;

use super::testing::World;
use super::{Ctx, Expected, Subscription};
use crate::Envelope;

#[derive(Deserialize)]
enum Go {
    Go {},
}

#[derive(Deserialize)]
enum Long {
    Item { n: u64 },
}

struct Counter;

impl Subscription for Counter {
    type Event = Go;
    const NAME: &'static str = "counter";
    const VERSION: u32 = 1;
    const MAX_PAGE_SIZE: Option<u32> = Some(7);

    fn handle(ctx: &mut Ctx<'_>, _: &Envelope<Go>) -> Result<(), String> {
        let first = ctx.read_stream_page::<Long>("long", 1, 1000)?;
        assert_eq!((first.events.len(), first.next), (1000, Some(1001)));
        let last = ctx.read_stream_page::<Long>("long", 2001, 1000)?;
        assert_eq!(
            (last.events.len(), last.next, last.version),
            (500, None, 2500)
        );
        let (version, sum) = ctx.fold_stream::<Long, _>("long", 0, |sum, e| {
            let Long::Item { n } = e.event;
            *sum += n;
        })?;
        ctx.emit(
            "sums",
            Expected::Any,
            "Summed",
            &json!({ "version": version, "sum": sum }),
            None,
        )?;
        Ok(())
    }
}

#[test]
fn a_stream_is_read_and_folded_a_page_at_a_time() {
    let mut world = World::new();
    for n in 1..=2500 {
        world.given("long", "Item", json!({ "n": n }));
    }
    world.given("go", "Go", json!({}));
    world.run::<Counter>().expect("handled");
    let sums = world.stream("sums");
    let data: serde_json::Value = serde_json::from_str(&sums[0].data).expect("json");
    assert_eq!(data, json!({ "version": 2500, "sum": 2500 * 2501 / 2 }));
    assert_eq!(super::describe::<Counter>().max_page_size, Some(7));
}
