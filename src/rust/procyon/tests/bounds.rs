//! How `filter` and `delete` bounds are encoded for the host (src/abi/README.md, "Index bounds"):
//! the prefix's count and values, then the two ends of a range of the next column.

use procyon::rt::{BOUND_EXCLUDED, BOUND_INCLUDED, BOUND_UNBOUNDED};
use procyon::{IndexScanRangeBounds, SingleBound};

fn bounds<T, K, B: IndexScanRangeBounds<T, K>>(bounds: B) -> Vec<u8> {
    bounds.encode_bounds()
}

#[test]
fn a_value_joins_the_prefix_and_leaves_both_ends_unbounded() {
    assert_eq!(bounds::<(u32,), SingleBound, _>(7u32), [&1u32.to_le_bytes()[..], &7u32.to_le_bytes(), &[BOUND_UNBOUNDED, BOUND_UNBOUNDED]].concat());
    assert_eq!(bounds::<(u32,), SingleBound, _>(&7u32), bounds::<(u32,), SingleBound, _>(7u32));
    assert_eq!(bounds::<(u32,), (), _>((7u32,)), bounds::<(u32,), SingleBound, _>(7u32));
}

#[test]
fn each_range_form_sends_its_two_ends() {
    let range = |lower: &[u8], upper: &[u8]| [&0u32.to_le_bytes()[..], lower, upper].concat();
    let included = |v: u8| vec![BOUND_INCLUDED, v];
    let excluded = |v: u8| vec![BOUND_EXCLUDED, v];
    let unbounded = vec![BOUND_UNBOUNDED];
    assert_eq!(bounds::<(u8,), SingleBound, _>(1u8..5), range(&included(1), &excluded(5)));
    assert_eq!(bounds::<(u8,), SingleBound, _>(1u8..=5), range(&included(1), &included(5)));
    assert_eq!(bounds::<(u8,), SingleBound, _>(1u8..), range(&included(1), &unbounded));
    assert_eq!(bounds::<(u8,), SingleBound, _>(..5u8), range(&unbounded, &excluded(5)));
    assert_eq!(bounds::<(u8,), SingleBound, _>(..=5u8), range(&unbounded, &included(5)));
}

#[test]
fn a_tuple_sends_its_prefix_then_the_last_columns_range_and_str_encodes_as_string() {
    let mut expected = 1u32.to_le_bytes().to_vec();
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(b"ab");
    expected.push(BOUND_INCLUDED);
    expected.extend_from_slice(&(-3i64).to_le_bytes());
    expected.push(BOUND_UNBOUNDED);
    assert_eq!(bounds::<(String, i64), (), _>(("ab", -3i64..)), expected);
    assert_eq!(bounds::<(String, i64), (), _>((String::from("ab"), -3i64..)), expected);
}
