//! Decoding `(event type, data JSON)` as a variant of the author's event enum.
//!
//! The event enum is an ordinary externally tagged serde enum: serde asks the
//! deserializer for an enum, the event type names the variant and the data JSON is the
//! variant's content. No JSON is built or copied on the way.

use std::cell::Cell;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Error as _, IgnoredAny, VariantAccess,
    Visitor,
};
use serde::forward_to_deserialize_any;

type JsonRead<'de> = serde_json::de::StrRead<'de>;

const NOT_AN_ENUM: &str =
    "the projection's event type must be a plain (externally tagged) serde enum";

/// Decodes the data of an event of type `event_type` as that variant of `E`.
pub(crate) fn decode<E: DeserializeOwned>(
    event_type: &str,
    data: &str,
) -> Result<E, serde_json::Error> {
    E::deserialize(EventDeserializer { event_type, data })
}

/// The variant names of the enum `E` (after serde renames): the handled event types.
///
/// Empty if `E` is not deserialized as an enum.
pub(crate) fn variants<E: DeserializeOwned>() -> &'static [&'static str] {
    let found = Cell::new(&[][..]);
    // The probe always fails once it has seen the variants: only `found` matters.
    let _ = E::deserialize(VariantProbe(&found));
    found.get()
}

/// A deserializer of one event: an enum whose variant is the event type.
struct EventDeserializer<'de> {
    event_type: &'de str,
    data: &'de str,
}

impl<'de> de::Deserializer<'de> for EventDeserializer<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom(NOT_AN_ENUM))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

impl<'de> EnumAccess<'de> for EventDeserializer<'de> {
    type Error = serde_json::Error;
    type Variant = DataAccess<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let variant = seed.deserialize(BorrowedStrDeserializer::new(self.event_type))?;
        Ok((variant, DataAccess { data: self.data }))
    }
}

/// The content of the variant: the event's data JSON.
struct DataAccess<'de> {
    data: &'de str,
}

impl<'de> DataAccess<'de> {
    /// Runs `f` on a JSON deserializer of the data and checks nothing follows.
    fn json<T>(
        self,
        f: impl FnOnce(&mut serde_json::Deserializer<JsonRead<'de>>) -> Result<T, serde_json::Error>,
    ) -> Result<T, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(self.data);
        let value = f(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

impl<'de> VariantAccess<'de> for DataAccess<'de> {
    type Error = serde_json::Error;

    /// A unit variant keeps none of the data, so the data is only checked to be JSON.
    fn unit_variant(self) -> Result<(), Self::Error> {
        self.json(|de| de::Deserialize::deserialize(de).map(|IgnoredAny| ()))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.json(|de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.json(|de| de::Deserializer::deserialize_tuple(de, len, visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.json(|de| de::Deserializer::deserialize_struct(de, "", fields, visitor))
    }
}

/// A deserializer that only records the variants serde passes to `deserialize_enum`.
struct VariantProbe<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for VariantProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom(NOT_AN_ENUM))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(variants);
        Err(Self::Error::custom("variants recorded"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
