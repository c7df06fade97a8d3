//! The Rust half of the codec agreement: the values of tests/golden/values.json, built in Rust,
//! must encode to exactly the bytes in tests/golden/bsatn.txt and decode back. The C# half is
//! tests/Procyon.Tests/GoldenVectorTests.cs. Run with `cargo test -p example` (host target).

use example::{Everything, Item, Order, Status, Tree};
use procyon::{Identity, ProcyonType, ScheduleAt, TimeDuration, Timestamp, Uuid};

fn golden(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../tests/golden/bsatn.txt");
    let text = std::fs::read_to_string(path).expect("tests/golden/bsatn.txt");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no golden bytes named {}", name))
        .to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

fn check<T: ProcyonType + PartialEq + std::fmt::Debug>(name: &str, value: T) {
    let mut out = Vec::new();
    value.encode(&mut out);
    assert_eq!(hex(&out), golden(name), "{} encodes differently", name);
    let mut input = &out[..];
    assert_eq!(T::decode(&mut input).unwrap(), value, "{} decodes differently", name);
    assert!(input.is_empty(), "{} leaves bytes over", name);
}

fn identity(byte: u8) -> Identity {
    Identity::from_bytes([byte; 32])
}

#[test]
fn everything() {
    let mut who = [0u8; 32];
    who[31] = 0xff;
    check(
        "everything",
        Everything {
            flag: true,
            i8: -8,
            i16: -16,
            i32: -32,
            i64: -9007199254740993,
            i128: i128::MIN,
            u8: 255,
            u16: 65535,
            u32: 4294967295,
            u64: u64::MAX,
            u128: u128::MAX,
            f32: 0.5,
            f64: -2.25,
            text: "héllo".into(),
            bytes: vec![0xde, 0xad, 0xbe, 0xef],
            list: vec![1, -2, 3],
            maybe: Some(7),
            who: Identity::from_bytes(who),
            when: Timestamp::from_micros_since_unix_epoch(1795867200123456),
            every: TimeDuration::from_micros(1500000),
            schedule: ScheduleAt::Interval(TimeDuration::from_micros(60000000)),
            uuid: Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
            nothing: (),
        },
    );
}

#[test]
fn order_shipped() {
    check(
        "order_shipped",
        Order {
            id: 7,
            customer: identity(1),
            items: vec![Item { name: "tea".into(), qty: 2, tags: vec!["hot".into(), "green".into()] }],
            note: Some("ring twice".into()),
            status: Status::Shipped(Timestamp::from_micros_since_unix_epoch(1767225600000000)),
            placed: Timestamp::from_micros_since_unix_epoch(1767225599999999),
            total: 12.5,
        },
    );
}

#[test]
fn order_pending() {
    check(
        "order_pending",
        Order {
            id: 0,
            customer: identity(0),
            items: vec![],
            note: None,
            status: Status::Pending,
            placed: Timestamp::UNIX_EPOCH,
            total: 0.0,
        },
    );
}

#[test]
fn tree() {
    let leaf = |value| Tree { value, children: vec![] };
    check("tree", Tree { value: 1, children: vec![leaf(-2), Tree { value: 3, children: vec![leaf(4)] }] });
}
