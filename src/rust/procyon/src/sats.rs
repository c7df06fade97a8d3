//! The algebraic type system the host and modules share, and BSATN, its binary encoding.
//!
//! BSATN is little-endian and carries no self-description: the host decodes a value only
//! through the type a module declared for it. The C# twin lives in `src/Procyon.Sats`.

use std::any::TypeId;
use std::fmt;

/// The type of a value, as the host sees it. Tags are the BSATN encoding of the type itself.
#[derive(Clone, Debug, PartialEq)]
pub enum AlgebraicType {
    Ref(u32),
    Sum(Vec<Element>),
    Product(Vec<Element>),
    Array(Box<AlgebraicType>),
    String,
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    I128,
    U128,
    F32,
    F64,
}

/// A named (or positional) field of a product, or a variant of a sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub name: Option<String>,
    pub ty: AlgebraicType,
}

impl Element {
    pub fn named(name: &str, ty: AlgebraicType) -> Self {
        Element { name: Some(name.to_owned()), ty }
    }
}

impl AlgebraicType {
    pub fn unit() -> Self {
        AlgebraicType::Product(Vec::new())
    }

    /// `Option<T>` is the sum `some(T) | none`, in that order.
    pub fn option(some: AlgebraicType) -> Self {
        AlgebraicType::Sum(vec![Element::named("some", some), Element::named("none", Self::unit())])
    }

    fn tag(&self) -> u8 {
        match self {
            AlgebraicType::Ref(_) => 0,
            AlgebraicType::Sum(_) => 1,
            AlgebraicType::Product(_) => 2,
            AlgebraicType::Array(_) => 3,
            AlgebraicType::String => 4,
            AlgebraicType::Bool => 5,
            AlgebraicType::I8 => 6,
            AlgebraicType::U8 => 7,
            AlgebraicType::I16 => 8,
            AlgebraicType::U16 => 9,
            AlgebraicType::I32 => 10,
            AlgebraicType::U32 => 11,
            AlgebraicType::I64 => 12,
            AlgebraicType::U64 => 13,
            AlgebraicType::I128 => 14,
            AlgebraicType::U128 => 15,
            AlgebraicType::F32 => 16,
            AlgebraicType::F64 => 17,
        }
    }

    /// Writes the type itself as BSATN, for the module description.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            AlgebraicType::Ref(r) => r.encode(out),
            AlgebraicType::Sum(elements) | AlgebraicType::Product(elements) => {
                encode_len(elements.len(), out);
                for element in elements {
                    element.name.encode(out);
                    element.ty.encode(out);
                }
            }
            AlgebraicType::Array(inner) => inner.encode(out),
            _ => {}
        }
    }
}

/// Named types that other types refer to with `AlgebraicType::Ref`.
#[derive(Default)]
pub struct Typespace {
    pub types: Vec<AlgebraicType>,
    pub names: Vec<(String, u32)>,
    registered: Vec<(TypeId, u32)>,
}

impl Typespace {
    /// A reference to the named type `T`, defined on first use. Because the reference exists
    /// before `define` runs, a type may contain itself (through `Vec`, `Option` or `Box`).
    pub fn named<T: 'static>(&mut self, name: &str, define: fn(&mut Typespace) -> AlgebraicType) -> AlgebraicType {
        let id = TypeId::of::<T>();
        if let Some((_, index)) = self.registered.iter().find(|(known, _)| *known == id) {
            return AlgebraicType::Ref(*index);
        }
        let index = self.types.len() as u32;
        self.types.push(AlgebraicType::unit());
        self.registered.push((id, index));
        let mut display = name.to_owned();
        let mut copy = 1;
        while self.names.iter().any(|(taken, _)| *taken == display) {
            copy += 1;
            display = format!("{}{}", name, copy);
        }
        self.names.push((display, index));
        self.types[index as usize] = define(self);
        AlgebraicType::Ref(index)
    }
}

/// A value that could not be read from BSATN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Rust type that has an algebraic type and a BSATN encoding.
pub trait ProcyonType: Sized {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError>;
}

/// Takes `n` bytes off the front of `input`.
pub fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError(format!("expected {} more bytes, found {}", n, input.len())));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

/// Lengths of strings and arrays are u32.
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    (len as u32).encode(out);
}

fn decode_len(input: &mut &[u8]) -> Result<usize, DecodeError> {
    Ok(u32::decode(input)? as usize)
}

macro_rules! impl_number {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl ProcyonType for $t {
            fn algebraic_type(_: &mut Typespace) -> AlgebraicType {
                AlgebraicType::$v
            }
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                let mut bytes = [0u8; std::mem::size_of::<$t>()];
                bytes.copy_from_slice(take(input, std::mem::size_of::<$t>())?);
                Ok(<$t>::from_le_bytes(bytes))
            }
        }
    )*};
}

impl_number!(
    i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
    i64 => I64, u64 => U64, i128 => I128, u128 => U128, f32 => F32, f64 => F64,
);

impl ProcyonType for bool {
    fn algebraic_type(_: &mut Typespace) -> AlgebraicType {
        AlgebraicType::Bool
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match u8::decode(input)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError(format!("invalid bool byte {}", other))),
        }
    }
}

impl ProcyonType for String {
    fn algebraic_type(_: &mut Typespace) -> AlgebraicType {
        AlgebraicType::String
    }
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = decode_len(input)?;
        let bytes = take(input, len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| DecodeError(format!("invalid UTF-8: {}", e)))
    }
}

impl ProcyonType for () {
    fn algebraic_type(_: &mut Typespace) -> AlgebraicType {
        AlgebraicType::unit()
    }
    fn encode(&self, _: &mut Vec<u8>) {}
    fn decode(_: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl<T: ProcyonType> ProcyonType for Vec<T> {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        AlgebraicType::Array(Box::new(T::algebraic_type(typespace)))
    }
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        for item in self {
            item.encode(out);
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = decode_len(input)?;
        // Every element takes at least zero bytes, so cap the pre-allocation by what is left.
        let mut items = Vec::with_capacity(len.min(input.len()));
        for _ in 0..len {
            items.push(T::decode(input)?);
        }
        Ok(items)
    }
}

impl<T: ProcyonType> ProcyonType for Option<T> {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        AlgebraicType::option(T::algebraic_type(typespace))
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => {
                out.push(0);
                value.encode(out);
            }
            None => out.push(1),
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match u8::decode(input)? {
            0 => Ok(Some(T::decode(input)?)),
            1 => Ok(None),
            tag => Err(DecodeError(format!("invalid option tag {}", tag))),
        }
    }
}

impl<T: ProcyonType> ProcyonType for Box<T> {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        T::algebraic_type(typespace)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out)
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Box::new(T::decode(input)?))
    }
}

/// Reads the tag of a sum value, for `#[derive(ProcyonType)]` on enums.
pub fn decode_tag(input: &mut &[u8]) -> Result<u8, DecodeError> {
    u8::decode(input)
}

/// The error for a tag no variant has.
pub fn unknown_variant(type_name: &str, tag: u8) -> DecodeError {
    DecodeError(format!("{} has no variant with tag {}", type_name, tag))
}
