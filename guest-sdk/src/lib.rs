//! Write refract projections in Rust and ship them as WebAssembly components.
//!
//! A projection folds events into JSON documents. You write a serde enum of the events
//! you handle (each variant name is an event type, its content the event's data), a
//! document type, and the [`Projection`] trait's `create` and `apply`; one
//! [`export_projection!`] line makes the crate a component exporting
//! `refract:projection/projection@1.1.0` (or `@1.0.0`, for older hosts, with
//! `export_projection!(T, wit = "1.0.0")`). The SDK decodes events, skips event types
//! the enum does not name, turns decode errors and panics into errors the host reports
//! with the event's sequence, and lets you test the projection natively with
//! [`testing`].
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use refract_guest::testing::given;
//! use refract_guest::{Envelope, Projection};
//! use serde::{Deserialize, Serialize};
//! use serde_json::json;
//!
//! /// The events handled: `CartOpened` events' data is `{"customer_id": ...}`, etc.
//! #[derive(Deserialize)]
//! enum CartEvent {
//!     CartOpened { customer_id: String },
//!     ItemAdded { sku: String, quantity: u32 },
//!     #[serde(rename = "cart-abandoned")]
//!     Abandoned,
//! }
//!
//! /// The document, stored as JSON.
//! #[derive(Serialize, Deserialize)]
//! struct Cart {
//!     id: String,
//!     customer_id: String,
//!     items: u32,
//! }
//!
//! struct Carts;
//!
//! impl Projection for Carts {
//!     type Event = CartEvent;
//!     type Doc = Cart;
//!     const NAME: &'static str = "carts";
//!     const VERSION: u32 = 1;
//!
//!     fn create(id: &str, event: &Envelope<CartEvent>) -> Option<Cart> {
//!         match &event.event {
//!             CartEvent::CartOpened { customer_id } => Some(Cart {
//!                 id: id.to_owned(),
//!                 customer_id: customer_id.clone(),
//!                 items: 0,
//!             }),
//!             _ => None, // no cart yet: ignore the event
//!         }
//!     }
//!
//!     fn apply(cart: &mut Cart, event: &Envelope<CartEvent>) {
//!         if let CartEvent::ItemAdded { quantity, .. } = &event.event {
//!             cart.items += quantity;
//!         }
//!     }
//!
//!     fn should_delete(_cart: &Cart, event: &Envelope<CartEvent>) -> bool {
//!         matches!(event.event, CartEvent::Abandoned)
//!     }
//! }
//!
//! // Built for wasm32, this exports the component; natively it only checks `Carts`.
//! refract_guest::export_projection!(Carts);
//!
//! // The handled event types come from the enum.
//! let descriptor = refract_guest::describe::<Carts>();
//! assert_eq!(descriptor.event_types, ["CartOpened", "ItemAdded", "cart-abandoned"]);
//!
//! // Given these events, then these documents.
//! let events = given()
//!     .event("cart-1", "CartOpened", json!({ "customer_id": "c-7" }))
//!     .event("cart-1", "ItemAdded", json!({ "sku": "tea", "quantity": 2 }))
//!     .event("cart-2", "CartOpened", json!({ "customer_id": "c-8" }))
//!     .event("cart-1", "PriceChanged", json!({ "sku": "tea" })) // not handled: skipped
//!     .event("cart-2", "cart-abandoned", json!({}));
//! let expected = json!({ "id": "cart-1", "customer_id": "c-7", "items": 2 });
//! assert_eq!(events.docs::<Carts>(), BTreeMap::from([("cart-1".to_owned(), expected)]));
//!
//! // A decode error names the event.
//! let bad = given().event("cart-3", "CartOpened", json!({}));
//! let error = bad.project::<Carts>().unwrap_err();
//! assert_eq!(error.event_sequence, Some(1));
//! assert!(error.message.starts_with("cannot decode CartOpened at sequence 1: missing field `customer_id`"));
//! ```
//!
//! Build the component with `cargo build --target wasm32-wasip2 --release` (the crate
//! needs `crate-type = ["cdylib", "rlib"]`) and deploy it with
//! `refract deploy target/wasm32-wasip2/release/<crate>.wasm`.
//!
//! [`describe`], [`slice()`] and [`apply`] are the component's calls as plain Rust
//! functions over the mirror types ([`Event`], [`Slice`], [`DocEvents`], ...): the
//! export glue delegates to them, and hosts can run a projection natively with them.

/// The bindings of each WIT version the SDK can export.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    /// `refract:projection@1.2.0`, the latest.
    pub mod v1_2 {
        wit_bindgen::generate!({
            path: "../wit/projection-1.2.0",
            world: "projector",
            // The older versions' `doc-slice` and `doc-events`, which 1.2.0's own
            // calls do not use: the older bindings take their types from here.
            generate_unused_types: true,
            pub_export_macro: true,
            default_bindings_module: "refract_guest::bindings::v1_2",
        });
    }

    /// `refract:projection@1.1.0`, through a world of another name: every version's
    /// world is called `projector`, and each generated export macro is exported
    /// under a name made from its world's.
    pub mod v1_1 {
        wit_bindgen::generate!({
            inline: "package refract:guest-sdk;
                     world projector-v110 { include refract:projection/projector@1.1.0; }",
            path: "../wit/projection-1.1.0",
            world: "projector-v110",
            // 1.2.0 only adds to 1.1.0's types: one set of types, and of glue.
            with: {
                "refract:projection/types@1.1.0": crate::bindings::v1_2::refract::projection::types,
                "refract:projection/host@1.1.0/level": crate::bindings::v1_2::refract::projection::host::Level,
            },
            // The interfaces are in another package than this world's: generate them.
            generate_all,
            pub_export_macro: true,
            default_bindings_module: "refract_guest::bindings::v1_1",
        });
    }

    /// `refract:projection@1.0.0`, through a world of another name (as 1.1.0).
    pub mod v1_0 {
        wit_bindgen::generate!({
            inline: "package refract:guest-sdk;
                     world projector-v100 { include refract:projection/projector@1.0.0; }",
            path: "../wit/projection",
            world: "projector-v100",
            with: {
                "refract:projection/types@1.0.0": crate::bindings::v1_2::refract::projection::types,
                "refract:projection/host@1.0.0/level": crate::bindings::v1_2::refract::projection::host::Level,
            },
            generate_all,
            pub_export_macro: true,
            default_bindings_module: "refract_guest::bindings::v1_0",
        });
    }
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[path = "glue.rs"]
pub mod __glue;

mod decode;
mod engine;
pub mod log;
pub mod lookup;
mod projection;
pub mod subscription;
pub mod testing;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lookup;
#[cfg(test)]
mod tests_page_size;
#[cfg(test)]
mod tests_readme;
#[cfg(test)]
mod tests_routing;

/// The README's examples, compiled (and run) by `cargo test` so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use engine::{apply, describe, slice};
pub use projection::{DocRef, Documents, Envelope, Lifecycle, NO_TENANT, Projection};
pub use types::{ComponentKind, Descriptor, DocChange, DocEvents, Event, GuestError, Slice};

/// Checks at compile time, on every target, that `P` is a projection.
#[doc(hidden)]
pub fn __assert_projection<P: Projection>() {}

/// Exports a [`Projection`] as the component's `refract:projection/projection`, of
/// the latest WIT version (1.2.0) or of the one named.
///
/// Use it once, in the crate built as the component (`crate-type = ["cdylib", "rlib"]`):
/// `refract_guest::export_projection!(MyProjection);`. For older hosts,
/// `refract_guest::export_projection!(MyProjection, wit = "1.1.0");` exports 1.1.0
/// (which has no collections: a document in one is refused at `slice`), and
/// `wit = "1.0.0"` exports 1.0.0 (which cannot declare
/// [`Projection::MAX_PAGE_SIZE`] either). It exports only when built for `wasm32`;
/// natively it expands to a type check, so the crate still builds and tests.
#[macro_export]
macro_rules! export_projection {
    (@export $projection:ty, $version:ident,
        $slice:ident -> $Slice:ident, $apply:ident <- $DocEvents:ident { $($more:tt)* }) => {
        const _: fn() = $crate::__assert_projection::<$projection>;

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct RefractProjectionExport;

            impl $crate::__glue::$version::Guest for RefractProjectionExport {
                fn describe() -> $crate::__glue::wit::Descriptor {
                    $crate::__glue::describe::<$projection>(&$crate::__glue::$version::HOST)
                }

                fn slice(
                    page: ::std::vec::Vec<$crate::__glue::wit::Event>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::__glue::wit::$Slice>,
                    $crate::__glue::wit::GuestError,
                > {
                    $crate::__glue::$slice::<$projection>(&$crate::__glue::$version::HOST, page)
                }

                fn apply(
                    docs: ::std::vec::Vec<$crate::__glue::wit::$DocEvents>,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::__glue::wit::DocChange>,
                    $crate::__glue::wit::GuestError,
                > {
                    $crate::__glue::$apply::<$projection>(&$crate::__glue::$version::HOST, docs)
                }

                $($more)*
            }

            $crate::bindings::$version::export!(
                RefractProjectionExport with_types_in $crate::bindings::$version
            );
        };
    };
    ($projection:ty) => {
        $crate::export_projection!($projection, wit = "1.2.0");
    };
    ($projection:ty, wit = "1.2.0") => {
        $crate::export_projection!(@export $projection, v1_2,
            slice_keyed -> KeyedSlice, apply_keyed <- KeyedDocEvents {
            fn describe_settings() -> $crate::__glue::wit::Settings {
                $crate::__glue::describe_settings::<$projection>(&$crate::__glue::v1_2::HOST)
            }

            fn describe_collections() -> ::std::vec::Vec<::std::string::String> {
                $crate::__glue::v1_2::describe_collections::<$projection>()
            }
        });
    };
    ($projection:ty, wit = "1.1.0") => {
        $crate::export_projection!(@export $projection, v1_1,
            slice -> DocSlice, apply <- DocEvents {
            fn describe_settings() -> $crate::__glue::wit::Settings {
                $crate::__glue::describe_settings::<$projection>(&$crate::__glue::v1_1::HOST)
            }
        });
    };
    ($projection:ty, wit = "1.0.0") => {
        $crate::export_projection!(@export $projection, v1_0,
            slice -> DocSlice, apply <- DocEvents {});
    };
    ($projection:ty, wit = $other:literal) => {
        ::core::compile_error!(::core::concat!(
            "refract-guest exports WIT 1.2.0, 1.1.0 or 1.0.0, not ",
            $other
        ));
    };
}
