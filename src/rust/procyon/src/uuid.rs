//! `Uuid`: RFC 9562 identifiers, made by `ctx.new_uuid_v4()` and `ctx.new_uuid_v7()` as in
//! SpacetimeDB's bindings, so a module that uses them ports by renaming the crate.

use crate::random::CallRng;
use crate::rt::sys;
use crate::sats::{AlgebraicType, DecodeError, Element, ProcyonType, Typespace};
use rand::RngCore;
use std::fmt;
use std::str::FromStr;

/// A universally unique identifier. The value is the 128-bit number whose big-endian bytes are
/// the RFC's byte order, so ordering `Uuid`s (here, in Postgres's `uuid` and as text) is one
/// order, and version 7 identifiers sort by the time they were made. In JSON it is the
/// hyphenated lowercase text, `"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"`.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid {
    value: u128,
}

/// What a UUID's version field says it is (`Uuid::get_version`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// All zeros, `Uuid::NIL`.
    Nil,
    /// Random (`ctx.new_uuid_v4()`).
    V4,
    /// A millisecond timestamp, a counter and random bits (`ctx.new_uuid_v7()`).
    V7,
    /// All ones, `Uuid::MAX`.
    Max,
}

const VERSION_SHIFT: u32 = 76;
const VARIANT_SHIFT: u32 = 62;
/// The RFC 9562 variant, `0b10`, in the two bits after the version's 64-bit half.
const VARIANT_RFC: u128 = 0b10 << VARIANT_SHIFT;
const VERSION_AND_VARIANT_MASK: u128 = (0xF << VERSION_SHIFT) | (0b11 << VARIANT_SHIFT);

impl Uuid {
    /// `00000000-0000-0000-0000-000000000000`.
    pub const NIL: Uuid = Uuid { value: 0 };
    /// `ffffffff-ffff-ffff-ffff-ffffffffffff`.
    pub const MAX: Uuid = Uuid { value: u128::MAX };

    /// A version 4 UUID from 16 random bytes: every bit but the version's and the variant's is
    /// theirs. `Uuid::from_random_bytes_v4([0; 16])` is `00000000-0000-4000-8000-000000000000`.
    pub fn from_random_bytes_v4(random_bytes: [u8; 16]) -> Uuid {
        let random = u128::from_be_bytes(random_bytes) & !VERSION_AND_VARIANT_MASK;
        Uuid { value: random | (4 << VERSION_SHIFT) | VARIANT_RFC }
    }

    /// A version 7 UUID from the host's UUID clock (`uuid_v7_clock`: milliseconds since the Unix
    /// epoch times 2^16 plus a counter, strictly increasing) and random bits: 48 bits of
    /// milliseconds, the version, the counter's high 12 bits, the variant, its low 4 bits and
    /// 58 random bits. Two clock values in order make UUIDs in the same order.
    pub(crate) fn from_clock_v7(clock: u64, random: u64) -> Uuid {
        let millis = u128::from(clock >> 16);
        let counter = u128::from(clock & 0xFFFF);
        let value = (millis << 80)
            | (7 << VERSION_SHIFT)
            | ((counter >> 4) << 64)
            | VARIANT_RFC
            | ((counter & 0xF) << 58)
            | u128::from(random & ((1 << 58) - 1));
        Uuid { value }
    }

    pub const fn from_u128(value: u128) -> Uuid {
        Uuid { value }
    }

    pub const fn as_u128(&self) -> u128 {
        self.value
    }

    /// The 16 bytes in the RFC's order (what Postgres stores).
    pub fn to_bytes(&self) -> [u8; 16] {
        self.value.to_be_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Uuid {
        Uuid { value: u128::from_be_bytes(bytes) }
    }

    /// The version, for the nil and max UUIDs and RFC 9562 versions 4 and 7; `None` otherwise.
    pub fn get_version(&self) -> Option<Version> {
        match (self.value, (self.value >> VERSION_SHIFT) & 0xF, (self.value >> VARIANT_SHIFT) & 0b11) {
            (0, _, _) => Some(Version::Nil),
            (u128::MAX, _, _) => Some(Version::Max),
            (_, 4, 0b10) => Some(Version::V4),
            (_, 7, 0b10) => Some(Version::V7),
            _ => None,
        }
    }

    /// Reads the hyphenated form (`01890a5d-ac96-774b-bcce-b302099a8057`), 32 hex digits
    /// without hyphens, either in braces or after `urn:uuid:`; hex digits in either case.
    pub fn parse_str(text: &str) -> Result<Uuid, ParseUuidError> {
        let inner = text
            .strip_prefix("urn:uuid:")
            .or_else(|| text.strip_prefix('{').and_then(|t| t.strip_suffix('}')))
            .unwrap_or(text);
        let digits: Vec<u8> = match inner.len() {
            32 => inner.bytes().collect(),
            36 if [8, 13, 18, 23].iter().all(|&i| inner.as_bytes()[i] == b'-') => {
                inner.bytes().enumerate().filter(|(i, _)| ![8, 13, 18, 23].contains(i)).map(|(_, b)| b).collect()
            }
            _ => return Err(ParseUuidError(text.to_owned())),
        };
        let mut value = 0u128;
        for digit in digits {
            let nibble = (digit as char).to_digit(16).ok_or_else(|| ParseUuidError(text.to_owned()))?;
            value = (value << 4) | u128::from(nibble);
        }
        Ok(Uuid { value })
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            v >> 96,
            (v >> 80) & 0xFFFF,
            (v >> 64) & 0xFFFF,
            (v >> 48) & 0xFFFF,
            v & 0xFFFF_FFFF_FFFF
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({})", self)
    }
}

impl FromStr for Uuid {
    type Err = ParseUuidError;
    fn from_str(text: &str) -> Result<Uuid, ParseUuidError> {
        Uuid::parse_str(text)
    }
}

/// `ctx.new_uuid_v4()`: 122 bits from the call's generator.
pub(crate) fn new_v4(mut rng: &CallRng) -> Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    Uuid::from_random_bytes_v4(bytes)
}

/// `ctx.new_uuid_v7()`: the database's clock on this server, which only goes up (see
/// `uuid_v7_clock` in src/abi/README.md), and 58 bits from the call's generator.
pub(crate) fn new_v7(mut rng: &CallRng) -> Uuid {
    let clock = unsafe { sys::uuid_v7_clock() };
    Uuid::from_clock_v7(clock as u64, rng.next_u64())
}

/// Text that is not a UUID (`Uuid::parse_str`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseUuidError(String);

impl fmt::Display for ParseUuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a UUID (expected 32 hex digits, as 8-4-4-4-12 with hyphens or without)", self.0)
    }
}

impl std::error::Error for ParseUuidError {}

/// A product with one `u128` field named `__uuid__`, as SpacetimeDB has it, so the host knows
/// it from a plain number. Its BSATN is that `u128`, little-endian: the RFC bytes reversed.
impl ProcyonType for Uuid {
    fn algebraic_type(_: &mut Typespace) -> AlgebraicType {
        AlgebraicType::Product(vec![Element::named("__uuid__", AlgebraicType::U128)])
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.value.encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Uuid { value: u128::decode(input)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_hyphenated_lowercase_and_reads_back() {
        let uuid = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(uuid.to_string(), "01020304-0506-0708-090a-0b0c0d0e0f10");
        for text in [
            "01020304-0506-0708-090A-0B0C0D0E0F10",
            "0102030405060708090a0b0c0d0e0f10",
            "{01020304-0506-0708-090a-0b0c0d0e0f10}",
            "urn:uuid:01020304-0506-0708-090a-0b0c0d0e0f10",
        ] {
            assert_eq!(Uuid::parse_str(text), Ok(uuid), "{}", text);
        }
        assert_eq!(Uuid::NIL.to_string(), "00000000-0000-0000-0000-000000000000");
        assert_eq!(Uuid::MAX.to_string(), "ffffffff-ffff-ffff-ffff-ffffffffffff");
    }

    #[test]
    fn text_that_is_not_a_uuid_is_refused() {
        for text in ["not-a-uuid", "", "01020304-0506-0708-090a-0b0c0d0e0f1", "01020304+0506-0708-090a-0b0c0d0e0f10", "0102030405060708090a0b0c0d0e0f1g", "+1020304-0506-0708-090a-0b0c0d0e0f10"] {
            assert!(Uuid::parse_str(text).is_err(), "{}", text);
        }
        assert!("not-a-uuid".parse::<Uuid>().unwrap_err().to_string().contains("\"not-a-uuid\" is not a UUID"));
    }

    #[test]
    fn v4_sets_only_the_version_and_the_variant() {
        assert_eq!(Uuid::from_random_bytes_v4([0; 16]).to_string(), "00000000-0000-4000-8000-000000000000");
        assert_eq!(Uuid::from_random_bytes_v4([0xff; 16]).to_string(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(Uuid::from_random_bytes_v4([7; 16]).get_version(), Some(Version::V4));
    }

    #[test]
    fn v7_lays_out_milliseconds_counter_and_random_bits() {
        let millis: u64 = 1_686_000_000_000;
        let uuid = Uuid::from_clock_v7((millis << 16) | 0xABCD, 0);
        assert_eq!(uuid.to_string(), "01888d6e-5c00-7abc-b400-000000000000");
        assert_eq!(uuid.get_version(), Some(Version::V7));
        assert_eq!(Uuid::from_clock_v7(millis << 16, u64::MAX).to_string(), "01888d6e-5c00-7000-83ff-ffffffffffff");
    }

    #[test]
    fn v7_sorts_by_clock_whatever_the_random_bits() {
        let clocks = [1u64 << 16, (1 << 16) + 1, (1 << 16) + 0xF, (1 << 16) + 0x10, (2 << 16) - 1, 2 << 16];
        let uuids: Vec<Uuid> = clocks.iter().zip([u64::MAX, 0, u64::MAX, 0, u64::MAX, 0]).map(|(&c, r)| Uuid::from_clock_v7(c, r)).collect();
        assert!(uuids.windows(2).all(|pair| pair[0] < pair[1]), "{:?}", uuids);
        assert!(uuids.windows(2).all(|pair| pair[0].to_string() < pair[1].to_string()));
    }

    #[test]
    fn bsatn_is_the_u128_little_endian() {
        let uuid = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let mut out = Vec::new();
        uuid.encode(&mut out);
        let mut reversed = uuid.to_bytes();
        reversed.reverse();
        assert_eq!(out, reversed);
        assert_eq!(Uuid::decode(&mut &out[..]), Ok(uuid));
        assert_eq!(Uuid::from_bytes(uuid.to_bytes()), uuid);
    }
}
