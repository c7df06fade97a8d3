//! The SDK's half of the ABI check: the constants and type tags in src/abi/README.md are the
//! ones this crate uses. The host's half is tests/Procyon.Tests/AbiTests.cs.

use procyon::rt;
use procyon::sats::{AlgebraicType, Element};

const ABI: &str = include_str!("../../../abi/README.md");

/// The rows of the table whose header starts with `| {first} |`, as their cells without backticks.
fn table(first: &str) -> Vec<Vec<String>> {
    let header = format!("| {} |", first);
    let mut lines = ABI.lines().skip_while(|line| !line.starts_with(&header)).skip(2);
    let mut rows = Vec::new();
    for line in &mut lines {
        if !line.starts_with('|') {
            break;
        }
        rows.push(line.trim_matches('|').split('|').map(|cell| cell.trim().replace('`', "")).collect());
    }
    assert!(!rows.is_empty(), "the ABI has no table headed {}", header);
    rows
}

fn constant(name: &str) -> i64 {
    table("constant")
        .iter()
        .find(|row| row[0] == name)
        .unwrap_or_else(|| panic!("the ABI does not define {}", name))[1]
        .parse()
        .expect("a number")
}

#[test]
fn constants_match_the_abi() {
    let ours: Vec<(&str, i64)> = vec![
        ("STATUS_OK", rt::STATUS_OK.into()),
        ("STATUS_BAD_ARGUMENTS", rt::STATUS_BAD_ARGUMENTS.into()),
        ("STATUS_NO_SUCH_FUNCTION", rt::STATUS_NO_SUCH_FUNCTION.into()),
        ("STATUS_FAILED", rt::STATUS_FAILED.into()),
        ("KIND_PROCEDURE", rt::KIND_PROCEDURE.into()),
        ("KIND_REDUCER", rt::KIND_REDUCER.into()),
        ("KIND_INIT_REDUCER", rt::KIND_INIT_REDUCER.into()),
        ("KIND_CLIENT_CONNECTED", rt::KIND_CLIENT_CONNECTED.into()),
        ("KIND_CLIENT_DISCONNECTED", rt::KIND_CLIENT_DISCONNECTED.into()),
        ("FUNCTION_PUBLIC", rt::FUNCTION_PUBLIC.into()),
        ("COLUMN_PRIMARY_KEY", rt::COLUMN_PRIMARY_KEY.into()),
        ("COLUMN_AUTO_INC", rt::COLUMN_AUTO_INC.into()),
        ("COLUMN_UNIQUE", rt::COLUMN_UNIQUE.into()),
        ("COLUMN_INDEXED", rt::COLUMN_INDEXED.into()),
        ("COLUMN_DEFAULT", rt::COLUMN_DEFAULT.into()),
        ("TABLE_UNIQUE_VIOLATION", rt::TABLE_UNIQUE_VIOLATION),
        ("TABLE_NOT_FOUND", rt::TABLE_NOT_FOUND),
        ("TX_RETRY", rt::TX_RETRY),
        ("HTTP_INVALID_REQUEST", rt::HTTP_INVALID_REQUEST),
        ("HTTP_REFUSED", rt::HTTP_REFUSED),
        ("HTTP_TIMEOUT", rt::HTTP_TIMEOUT),
        ("HTTP_TOO_LARGE", rt::HTTP_TOO_LARGE),
        ("HTTP_NETWORK", rt::HTTP_NETWORK),
        ("SCAN_WHOLE_TABLE", rt::SCAN_WHOLE_TABLE.into()),
        ("BOUND_INCLUDED", rt::BOUND_INCLUDED.into()),
        ("BOUND_EXCLUDED", rt::BOUND_EXCLUDED.into()),
        ("BOUND_UNBOUNDED", rt::BOUND_UNBOUNDED.into()),
        // The SDK's logger sends the `log` crate's levels as they are.
        ("LEVEL_ERROR", log::Level::Error as i64),
        ("LEVEL_WARN", log::Level::Warn as i64),
        ("LEVEL_INFO", log::Level::Info as i64),
        ("LEVEL_DEBUG", log::Level::Debug as i64),
        ("LEVEL_TRACE", log::Level::Trace as i64),
    ];
    assert_eq!(ours.len(), table("constant").len(), "the ABI and the SDK define different sets of constants");
    for (name, value) in ours {
        assert_eq!(value, constant(name), "{} differs from the ABI", name);
    }
}

#[test]
fn type_tags_match_the_abi() {
    let types = vec![
        ("Ref", AlgebraicType::Ref(0)),
        ("Sum", AlgebraicType::Sum(Vec::new())),
        ("Product", AlgebraicType::Product(vec![Element::named("x", AlgebraicType::Bool)])),
        ("Array", AlgebraicType::Array(Box::new(AlgebraicType::U8))),
        ("String", AlgebraicType::String),
        ("Bool", AlgebraicType::Bool),
        ("I8", AlgebraicType::I8),
        ("U8", AlgebraicType::U8),
        ("I16", AlgebraicType::I16),
        ("U16", AlgebraicType::U16),
        ("I32", AlgebraicType::I32),
        ("U32", AlgebraicType::U32),
        ("I64", AlgebraicType::I64),
        ("U64", AlgebraicType::U64),
        ("I128", AlgebraicType::I128),
        ("U128", AlgebraicType::U128),
        ("F32", AlgebraicType::F32),
        ("F64", AlgebraicType::F64),
    ];
    let abi = table("type");
    assert_eq!(types.len(), abi.len(), "the ABI and the SDK have different type constructors");
    for (name, ty) in types {
        let mut out = Vec::new();
        ty.encode(&mut out);
        let row = abi.iter().find(|row| row[0] == name).unwrap_or_else(|| panic!("the ABI has no type {}", name));
        assert_eq!(out[0].to_string(), row[1], "the tag of {} differs from the ABI", name);
    }
}
