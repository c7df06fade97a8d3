use crate::sats::{take, AlgebraicType, DecodeError, Element, ProcyonType, Typespace};
use std::fmt;

/// Who called: 32 bytes, shown as 64 hex digits.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity([u8; 32]);

impl Identity {
    pub const ZERO: Identity = Identity([0; 32]);

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Identity(bytes)
    }

    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{:02x}", b))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self)
    }
}

/// Encoded as a product with one special field so the host can tell it from plain bytes.
impl ProcyonType for Identity {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        AlgebraicType::Product(vec![Element::named("__identity__", Vec::<u8>::algebraic_type(typespace))])
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.to_vec().encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let len = u32::decode(input)?;
        if len != 32 {
            return Err(DecodeError(format!("an identity has 32 bytes, not {}", len)));
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(take(input, 32)?);
        Ok(Identity(bytes))
    }
}

/// A hub connection's id (SpacetimeDB's `ConnectionId`): random per connection, given to the
/// calls made over it and to the `client_connected` / `client_disconnected` reducers. A `u128`
/// in values, so it can be a column; shown as 32 hex digits.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u128);

impl ConnectionId {
    pub const ZERO: ConnectionId = ConnectionId(0);

    pub fn from_u128(value: u128) -> Self {
        ConnectionId(value)
    }

    pub fn to_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({})", self)
    }
}

impl ProcyonType for ConnectionId {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        u128::algebraic_type(typespace)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        u128::decode(input).map(ConnectionId)
    }
}
