//! [`export_subscription!`](crate::export_subscription): the component's export of a
//! [`Subscription`](super::Subscription), of WIT 1.1.0 or 1.0.0.

/// Exports a [`Subscription`](crate::subscription::Subscription) as the component's `refract:subscription/subscription`,
/// of the latest WIT version (1.1.0) or of the one named.
///
/// Use it once, in the crate built as the component:
/// `refract_guest::export_subscription!(MySubscription);`. For hosts older than WIT
/// 1.1.0, `refract_guest::export_subscription!(MySubscription, wit = "1.0.0");`
/// exports 1.0.0 instead (which cannot declare [`Subscription::MAX_PAGE_SIZE`](crate::subscription::Subscription::MAX_PAGE_SIZE), and
/// whose stream reads are whole). It exports only when built for `wasm32`;
/// natively it expands to a type check.
#[macro_export]
macro_rules! export_subscription {
    (@export $subscription:ty, $version:ident { $($more:tt)* }) => {
        const _: fn() = $crate::subscription::__assert_subscription::<$subscription>;

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct RefractSubscriptionExport;

            impl $crate::subscription::glue::$version::Guest for RefractSubscriptionExport {
                fn describe() -> $crate::subscription::glue::wit::Descriptor {
                    $crate::subscription::glue::describe::<$subscription>(
                        &$crate::subscription::glue::$version::HOST,
                    )
                }

                fn handle(
                    page: ::std::vec::Vec<$crate::subscription::glue::wit::Event>,
                ) -> ::core::result::Result<(), $crate::subscription::glue::wit::GuestError>
                {
                    $crate::subscription::glue::handle::<$subscription>(
                        &$crate::subscription::glue::$version::HOST,
                        page,
                    )
                }

                $($more)*
            }

            $crate::subscription::glue::bindings::$version::export!(
                RefractSubscriptionExport with_types_in $crate::subscription::glue::bindings::$version
            );
        };
    };
    ($subscription:ty) => {
        $crate::export_subscription!($subscription, wit = "1.1.0");
    };
    ($subscription:ty, wit = "1.1.0") => {
        $crate::export_subscription!(@export $subscription, v1_1 {
            fn describe_settings() -> $crate::subscription::glue::wit::Settings {
                $crate::subscription::glue::describe_settings::<$subscription>()
            }
        });
    };
    ($subscription:ty, wit = "1.0.0") => {
        $crate::export_subscription!(@export $subscription, v1_0 {});
    };
}
