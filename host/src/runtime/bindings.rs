//! How each WIT version file binds its world ([`bind_wit!`]): what every version of
//! a world shares (its bindgen options, its export's name, its linker entry, how its
//! `describe` is asked) is written here once, and each file keeps only what its
//! version says differently.

/// Binds one version of a WIT world: `bind_wit!(<world> "<version>" at "<wit dir>")`
/// for the latest version, with `, types of <latest version's module>` added for an
/// older one. It defines:
/// - a private `bindings` module and the world's typed bindings and pre-instance
///   (`Projector`/`ProjectorPre`, `Subscriber`/`SubscriberPre`);
/// - `EXPORT`, the name under which a component of this version exports its calls;
/// - `add_to_linker`, which adds the version's host imports to a linker;
/// - `types`: the latest version's own, re-exported; an older version binds it in
///   place of its own (1.1.0 only adds to 1.0.0's types, so a 1.0.0 value is a
///   1.1.0 value), and its linker entry defines the (function-less) types instance
///   under the older name too, for guests that import it by that exact name;
/// - `describe`, which asks an instance what it is and how to call it in the
///   latest version's terms (`describe` and `describe-settings`); an older version
///   has no `describe-settings`, so its file says what they are with a function
///   `settings(&types::Descriptor) -> types::Settings`, or (`, own describe`) writes
///   its `describe` itself; `Described` names what `describe` returns.
macro_rules! bind_wit {
    (projector $($version:tt)*) => {
        $crate::runtime::bindings::bind_wit!(@bind
            "projector", projection, Projector, ProjectorPre, refract_projection_projection,
            "refract:projection/projection@", "refract:projection/types";
            $($version)*
        );
    };
    (subscriber $($version:tt)*) => {
        $crate::runtime::bindings::bind_wit!(@bind
            "subscriber", subscription, Subscriber, SubscriberPre,
            refract_subscription_subscription,
            "refract:subscription/subscription@", "refract:subscription/types";
            $($version)*
        );
    };
    // The latest version: its own types.
    (@bind
        $world:tt, $package:ident, $World:ident, $Pre:ident, $calls:ident,
        $export:tt, $types:tt;
        $version:tt at $path:tt
    ) => {
        $crate::runtime::bindings::bind_wit!(@common
            $world, $World, $Pre, $export, $version, $path, with: [], types_instance: []
        );
        $crate::runtime::bindings::bind_wit!(@latest $package, $World, $calls);
    };
    // An older version: the latest version's types in place of its own.
    (@bind
        $world:tt, $package:ident, $World:ident, $Pre:ident, $calls:ident,
        $export:tt, $types:tt;
        $version:tt at $path:tt, types of $($latest:ident)::+
    ) => {
        $crate::runtime::bindings::bind_wit!(@bind
            $world, $package, $World, $Pre, $calls, $export, $types;
            $version at $path, types of $($latest)::+, own describe
        );
        $crate::runtime::bindings::bind_wit!(@older $World, $calls);
    };
    // An older version that says how to `describe` itself (a function of its own).
    (@bind
        $world:tt, $package:ident, $World:ident, $Pre:ident, $calls:ident,
        $export:tt, $types:tt;
        $version:tt at $path:tt, types of $($latest:ident)::+, own describe
    ) => {
        $crate::runtime::bindings::bind_wit!(@common
            $world, $World, $Pre, $export, $version, $path,
            with: [with: { $types: $($latest)::+::types },],
            types_instance: [concat!($types, "@", $version)]
        );
        #[allow(unused_imports)]
        use $($latest)::+::{Described, types};
    };
    (@common
        $world:tt, $World:ident, $Pre:ident, $export:tt, $version:tt, $path:tt,
        with: [$($with:tt)*], types_instance: [$($instance:expr)?]
    ) => {
        mod bindings {
            wasmtime::component::bindgen!({
                world: $world,
                path: $path,
                $($with)*
            });
        }

        pub(crate) use bindings::{$World, $Pre};

        /// The name under which a component of this version exports its calls.
        pub const EXPORT: &str = concat!($export, $version);

        /// Adds this version's host imports to a linker.
        pub(crate) fn add_to_linker(
            linker: &mut wasmtime::component::Linker<$crate::runtime::state::HostState>,
        ) -> wasmtime::Result<()> {
            use $crate::runtime::state::HostState;
            use wasmtime::component::HasSelf;
            $World::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            $(linker.instance($instance)?;)?
            Ok(())
        }
    };
    (@latest $package:ident, $World:ident, $calls:ident) => {
        // `pub`: the older versions' bindings reuse it (the module itself is private
        // to the runtime).
        pub use bindings::refract::$package::types;

        impl types::Host for $crate::runtime::state::HostState {}

        /// What an instance says it is, in this (the latest) version's terms: its
        /// descriptor and its settings.
        pub(crate) type Described = (types::Descriptor, types::Settings);

        /// Asks an instance what it is (`describe`) and how to call it
        /// (`describe-settings`).
        pub(crate) fn describe(
            bindings: &$World,
            store: &mut wasmtime::Store<$crate::runtime::state::HostState>,
        ) -> wasmtime::Result<Described> {
            let calls = bindings.$calls();
            let descriptor = calls.call_describe(&mut *store)?;
            Ok((descriptor, calls.call_describe_settings(store)?))
        }
    };
    (@older $World:ident, $calls:ident) => {
        /// Asks an instance what it is, in the latest version's terms: its
        /// descriptor, and the settings this version has no call for (`settings`).
        pub(crate) fn describe(
            bindings: &$World,
            store: &mut wasmtime::Store<$crate::runtime::state::HostState>,
        ) -> wasmtime::Result<Described> {
            let descriptor = bindings.$calls().call_describe(store)?;
            let settings = settings(&descriptor);
            Ok((descriptor, settings))
        }
    };
}

pub(crate) use bind_wit;

#[cfg(test)]
mod tests {
    use super::super::{since_v1_0, since_v1_1, since_v1_2, subscriber_v1_0, subscriber_v1_1};

    /// The export names are put together from the version: they must be the
    /// published ones.
    #[test]
    fn each_version_exports_its_calls_under_its_published_name() {
        assert_eq!(since_v1_0::EXPORT, "refract:projection/projection@1.0.0");
        assert_eq!(since_v1_1::EXPORT, "refract:projection/projection@1.1.0");
        assert_eq!(since_v1_2::EXPORT, "refract:projection/projection@1.2.0");
        assert_eq!(
            subscriber_v1_0::EXPORT,
            "refract:subscription/subscription@1.0.0"
        );
        assert_eq!(
            subscriber_v1_1::EXPORT,
            "refract:subscription/subscription@1.1.0"
        );
    }
}
