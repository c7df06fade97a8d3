//! B-tree indexes as module code sees them: `ctx.db.t().col().filter(10..20)` and
//! `ctx.db.t().by_a_b().filter((a, "J".."K"))`, as SpacetimeDB's `RangedIndex` has them. The
//! bounds travel to the host as BSATN (`src/abi/README.md`, "Index bounds"), which runs them as
//! one SQL statement with bind parameters on the index it created.

use crate::rt::{sys, BOUND_EXCLUDED, BOUND_INCLUDED, BOUND_UNBOUNDED};
use crate::sats::{encode_len, ProcyonType};
use crate::table::TableIter;
use crate::{Identity, TimeDuration, Timestamp, Uuid};
use std::marker::PhantomData;
use std::ops::{Bound, Range, RangeFrom, RangeInclusive, RangeTo, RangeToInclusive};

/// A value an index column can be compared with: the column's own type, a reference to it, or
/// `&str` for a `String` column. Implemented for the types whose order in Postgres is their
/// order in Rust (integers, `bool`, `String`, `Identity`, `Uuid`, `Timestamp`, `TimeDuration`); floats,
/// options, byte vectors and structs are not, so filtering on them does not compile.
pub trait FilterableValue {
    /// The column type this value is compared with.
    type Column;
    #[doc(hidden)]
    fn encode_value(&self, out: &mut Vec<u8>);
}

macro_rules! impl_filterable {
    ($($t:ty),* $(,)?) => {$(
        impl FilterableValue for $t {
            type Column = $t;
            fn encode_value(&self, out: &mut Vec<u8>) {
                self.encode(out);
            }
        }
        impl FilterableValue for &$t {
            type Column = $t;
            fn encode_value(&self, out: &mut Vec<u8>) {
                (*self).encode(out);
            }
        }
    )*};
}

impl_filterable!(bool, i8, u8, i16, u16, i32, u32, i64, u64, i128, u128, String, Identity, Uuid, Timestamp, TimeDuration);

impl FilterableValue for &str {
    type Column = String;
    fn encode_value(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
}

/// What the last given column is matched with: one value, or a range of them.
#[doc(hidden)]
pub enum Terminator<'a, Arg> {
    Point(&'a Arg),
    Range(Bound<&'a Arg>, Bound<&'a Arg>),
}

/// A value (`5u32`, `"x"`) or a range (`a..b`, `a..=b`, `..b`, `..=b`, `a..`) of one column.
pub trait IndexScanRangeBoundsTerminator {
    type Arg: FilterableValue;
    #[doc(hidden)]
    fn terminator(&self) -> Terminator<'_, Self::Arg>;
}

impl<A: FilterableValue> IndexScanRangeBoundsTerminator for A {
    type Arg = A;
    fn terminator(&self) -> Terminator<'_, A> {
        Terminator::Point(self)
    }
}

macro_rules! impl_range_terminator {
    ($($range:ident => |$r:ident| ($lower:expr, $upper:expr)),* $(,)?) => {$(
        impl<A: FilterableValue> IndexScanRangeBoundsTerminator for $range<A> {
            type Arg = A;
            fn terminator(&self) -> Terminator<'_, A> {
                let $r = self;
                Terminator::Range($lower, $upper)
            }
        }
    )*};
}

impl_range_terminator!(
    Range => |r| (Bound::Included(&r.start), Bound::Excluded(&r.end)),
    RangeInclusive => |r| (Bound::Included(r.start()), Bound::Included(r.end())),
    RangeFrom => |r| (Bound::Included(&r.start), Bound::Unbounded),
    RangeTo => |r| (Bound::Unbounded, Bound::Excluded(&r.end)),
    RangeToInclusive => |r| (Bound::Unbounded, Bound::Included(&r.end)),
);

/// Marks the bounds given as a bare value or range rather than a tuple (Rust's coherence rules
/// need the two told apart); it never needs naming.
pub struct SingleBound;

/// What `filter` and `delete` of an index with columns `T` (a tuple) accept: a value or range of
/// its first column, or a tuple of values for a prefix of its columns, optionally ending in a
/// range of the next one: `(a, b)`, `(a, b_from..b_to)`, `(a,)`.
pub trait IndexScanRangeBounds<T, K = ()> {
    #[doc(hidden)]
    fn encode_bounds(&self) -> Vec<u8>;
}

/// Ends the bounds the host reads (`out` holds a 4-byte placeholder for the prefix's count and
/// the prefix's values): a value joins the prefix, a range follows it as its two bounds.
fn finish<Arg: FilterableValue>(mut out: Vec<u8>, prefix: u32, terminator: Terminator<'_, Arg>) -> Vec<u8> {
    let (count, lower, upper) = match terminator {
        Terminator::Point(value) => {
            value.encode_value(&mut out);
            (prefix + 1, Bound::Unbounded, Bound::Unbounded)
        }
        Terminator::Range(lower, upper) => (prefix, lower, upper),
    };
    for bound in [lower, upper] {
        match bound {
            Bound::Included(value) => {
                out.push(BOUND_INCLUDED);
                value.encode_value(&mut out);
            }
            Bound::Excluded(value) => {
                out.push(BOUND_EXCLUDED);
                value.encode_value(&mut out);
            }
            Bound::Unbounded => out.push(BOUND_UNBOUNDED),
        }
    }
    out[..4].copy_from_slice(&count.to_le_bytes());
    out
}

/// Implements the bounds of an index with columns `$C`: a bare value or range of the first, and
/// each tuple of values for a prefix ending in a value or range of the next column.
macro_rules! impl_index_bounds {
    ([$C0:ident $($C:ident)*]) => {
        impl<$C0, $($C,)* Term: IndexScanRangeBoundsTerminator> IndexScanRangeBounds<($C0, $($C,)*), SingleBound> for Term
        where
            Term::Arg: FilterableValue<Column = $C0>,
        {
            fn encode_bounds(&self) -> Vec<u8> {
                finish(vec![0; 4], 0, self.terminator())
            }
        }
        impl_index_bounds!(@tuples [$C0 $($C)*] [] [$C0 $($C)*] [A0 A1 A2 A3 A4 A5]);
    };
    (@tuples [$($C:ident)*] [$($P:ident $A:ident)*] [$T:ident $($Rest:ident)*] [$Next:ident $($Names:ident)*]) => {
        impl<$($C,)* $($A: FilterableValue<Column = $P>,)* Term: IndexScanRangeBoundsTerminator> IndexScanRangeBounds<($($C,)*)> for ($($A,)* Term,)
        where
            Term::Arg: FilterableValue<Column = $T>,
        {
            // The prefix's values are named after their types; a one-element tuple has none to add.
            #[allow(non_snake_case, unused_mut)]
            fn encode_bounds(&self) -> Vec<u8> {
                let ($($A,)* term,) = self;
                let mut out = vec![0; 4];
                $($A.encode_value(&mut out);)*
                finish(out, <[&str]>::len(&[$(stringify!($A)),*]) as u32, term.terminator())
            }
        }
        impl_index_bounds!(@tuples [$($C)*] [$($P $A)* $T $Next] [$($Rest)*] [$($Names)*]);
    };
    (@tuples [$($C:ident)*] [$($P:ident $A:ident)*] [] [$($Names:ident)*]) => {};
}

impl_index_bounds!([C0]);
impl_index_bounds!([C0 C1]);
impl_index_bounds!([C0 C1 C2]);
impl_index_bounds!([C0 C1 C2 C3]);
impl_index_bounds!([C0 C1 C2 C3 C4]);
impl_index_bounds!([C0 C1 C2 C3 C4 C5]);

/// A B-tree index of a table with rows `Row` on the columns `IndexType` (a tuple): a
/// `#[index(btree)]` column (`ctx.db.t().col()`) or an `index(accessor = x, btree(columns = [a, b]))`
/// of the table (`ctx.db.t().x()`).
pub struct RangedIndex<Row, IndexType> {
    table: &'static str,
    index: u32,
    _types: PhantomData<(Row, IndexType)>,
}

impl<Row: ProcyonType, IndexType> RangedIndex<Row, IndexType> {
    #[doc(hidden)]
    pub fn new(table: &'static str, index: u32) -> Self {
        RangedIndex { table, index, _types: PhantomData }
    }

    /// The rows whose indexed columns match `bounds`, in the index's order, read in chunks as
    /// the iterator goes: `filter(5u32)`, `filter(5u32..)`, `filter((7u32, "J".."K"))`. Integer
    /// literals need their type (`5u32`), as in SpacetimeDB.
    pub fn filter<B: IndexScanRangeBounds<IndexType, K>, K>(&self, bounds: B) -> TableIter<Row> {
        let bounds = bounds.encode_bounds();
        TableIter::open(self.table, self.index as i32, &bounds)
    }

    /// Deletes the rows whose indexed columns match `bounds`; returns how many went.
    pub fn delete<B: IndexScanRangeBounds<IndexType, K>, K>(&self, bounds: B) -> u64 {
        let bounds = bounds.encode_bounds();
        let deleted = unsafe { sys::table_delete_range(self.table.as_ptr(), self.table.len(), self.index as i32, bounds.as_ptr(), bounds.len()) };
        deleted as u64
    }
}
