//! `ckpt inspect --json` prints every metadata field as serde_json would,
//! except byte strings longer than [`SHOWN_BYTES`]: those (a written
//! file's saved contents, a pipe's bytes, a queue's messages) print as
//! `{"bytes": LEN}`. As arrays of numbers they made the output some five
//! times the image (a 17 MB image printed 41 MB of JSON, and took longer
//! than a script would wait); short ones (socket addresses, option values,
//! termios) stay arrays, as scripts read them.
//!
//! [`Lean`] wraps a value; its serializer passes everything through to the
//! inner one and wraps every nested value again, so the rule holds at any
//! depth (including `#[serde(flatten)]`ed fields).

use serde::ser::{self, Serialize, Serializer};

/// Byte strings up to this long print in full.
pub const SHOWN_BYTES: usize = 64;

/// `value` serialized with long byte strings shown by their length.
pub struct Lean<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Lean<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(LeanSer(s))
    }
}

/// What a long byte string prints as.
#[derive(serde::Serialize)]
struct Omitted {
    bytes: usize,
}

struct LeanSer<S>(S);

/// A compound serializer whose elements are wrapped in [`Lean`].
pub struct Wrap<C>(C);

macro_rules! pass {
    ($($name:ident($t:ty)),* $(,)?) => {
        $(fn $name(self, v: $t) -> Result<S::Ok, S::Error> {
            self.0.$name(v)
        })*
    };
}

impl<S: Serializer> Serializer for LeanSer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Wrap<S::SerializeSeq>;
    type SerializeTuple = Wrap<S::SerializeTuple>;
    type SerializeTupleStruct = Wrap<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Wrap<S::SerializeTupleVariant>;
    type SerializeMap = Wrap<S::SerializeMap>;
    type SerializeStruct = Wrap<S::SerializeStruct>;
    type SerializeStructVariant = Wrap<S::SerializeStructVariant>;

    pass!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_unit_struct(&'static str),
    );

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        if v.len() <= SHOWN_BYTES {
            self.0.serialize_bytes(v)
        } else {
            Omitted { bytes: v.len() }.serialize(self.0)
        }
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Lean(v))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Lean(v))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Lean(v))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Wrap)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Wrap)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Wrap)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Wrap)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Wrap)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Wrap)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Wrap)
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// `impl $trait for Wrap<C>`: each `$method(v)` passes `Lean(v)` on.
macro_rules! wrap_compound {
    ($trait:ident: $($method:ident),*) => {
        impl<C: ser::$trait> ser::$trait for Wrap<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            $(fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
                self.0.$method(&Lean(v))
            })*
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
}

wrap_compound!(SerializeSeq: serialize_element);
wrap_compound!(SerializeTuple: serialize_element);
wrap_compound!(SerializeTupleStruct: serialize_field);
wrap_compound!(SerializeTupleVariant: serialize_field);
wrap_compound!(SerializeMap: serialize_key, serialize_value);

/// `impl $trait for Wrap<C>` for the named-field compounds.
macro_rules! wrap_fields {
    ($($trait:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Wrap<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), C::Error> {
                self.0.serialize_field(key, &Lean(v))
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
                self.0.skip_field(key)
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

wrap_fields!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A byte string of `.0` sevens (as serde_bytes fields serialize).
    struct B(usize);
    impl Serialize for B {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&vec![7u8; self.0])
        }
    }

    #[derive(serde::Serialize)]
    struct Inner {
        short: B,
        long: B,
        many: Vec<B>,
        maybe: Option<B>,
        tagged: Tagged,
        plain: Vec<u8>,
    }

    #[derive(serde::Serialize)]
    enum Tagged {
        Data(B),
    }

    #[derive(serde::Serialize)]
    struct Outer {
        n: u64,
        #[serde(flatten)]
        inner: Inner,
        by_key: BTreeMap<i32, (i64, B)>,
    }

    #[test]
    fn long_byte_strings_print_as_their_length_at_any_depth() {
        let v = Outer {
            n: u64::MAX,
            inner: Inner {
                short: B(3),
                long: B(1000),
                many: vec![B(65), B(64)],
                maybe: Some(B(100)),
                tagged: Tagged::Data(B(70)),
                plain: vec![9; 100],
            },
            by_key: BTreeMap::from([(-3, (5, B(200)))]),
        };
        let got: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&Lean(&v)).unwrap()).unwrap();
        let want = serde_json::json!({
            "n": u64::MAX,
            "short": [7, 7, 7],
            "long": {"bytes": 1000},
            "many": [{"bytes": 65}, vec![7; 64]],
            "maybe": {"bytes": 100},
            "tagged": {"Data": {"bytes": 70}},
            "plain": vec![9; 100],
            "by_key": {"-3": [5, {"bytes": 200}]},
        });
        assert_eq!(got, want);
        // Nothing else differs from serde_json's own output.
        let small = Inner {
            short: B(1),
            long: B(3),
            many: vec![],
            maybe: None,
            tagged: Tagged::Data(B(2)),
            plain: vec![],
        };
        assert_eq!(
            serde_json::to_string_pretty(&Lean(&small)).unwrap(),
            serde_json::to_string_pretty(&small).unwrap()
        );
    }
}
