use crate::sats::{AlgebraicType, DecodeError, Element, ProcyonType, Typespace};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time: microseconds since the Unix epoch. `Display` is RFC 3339 in UTC.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp {
    micros_since_unix_epoch: i64,
}

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp { micros_since_unix_epoch: 0 };

    pub fn from_micros_since_unix_epoch(micros: i64) -> Self {
        Timestamp { micros_since_unix_epoch: micros }
    }

    pub fn to_micros_since_unix_epoch(self) -> i64 {
        self.micros_since_unix_epoch
    }

    /// `None` when `earlier` is later than `self`.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let micros = self.micros_since_unix_epoch.checked_sub(earlier.micros_since_unix_epoch)?;
        u64::try_from(micros).ok().map(Duration::from_micros)
    }

    /// The signed distance from `earlier` to `self`.
    pub fn time_duration_since(self, earlier: Timestamp) -> TimeDuration {
        TimeDuration::from_micros(self.micros_since_unix_epoch - earlier.micros_since_unix_epoch)
    }
}

fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp::from_micros_since_unix_epoch(self.micros_since_unix_epoch.saturating_add(duration_micros(rhs)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp::from_micros_since_unix_epoch(self.micros_since_unix_epoch.saturating_sub(duration_micros(rhs)))
    }
}

impl Add<TimeDuration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: TimeDuration) -> Timestamp {
        Timestamp::from_micros_since_unix_epoch(self.micros_since_unix_epoch.saturating_add(rhs.to_micros()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MICROS_PER_DAY: i64 = 86_400_000_000;
        let days = self.micros_since_unix_epoch.div_euclid(MICROS_PER_DAY);
        let micros_of_day = self.micros_since_unix_epoch.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let seconds = micros_of_day / 1_000_000;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            year,
            month,
            day,
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            micros_of_day % 1_000_000
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A signed span of time in microseconds, used for intervals.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimeDuration {
    micros: i64,
}

impl TimeDuration {
    pub fn from_micros(micros: i64) -> Self {
        TimeDuration { micros }
    }

    pub fn to_micros(self) -> i64 {
        self.micros
    }
}

impl From<Duration> for TimeDuration {
    fn from(d: Duration) -> Self {
        TimeDuration::from_micros(duration_micros(d))
    }
}

/// When a scheduled row runs: once at a time, repeatedly on an interval, or on a cron schedule.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ScheduleAt {
    Interval(TimeDuration),
    Time(Timestamp),
    /// Procyon's own, beside SpacetimeDB's two (a `match` over `ScheduleAt` needs an arm for it):
    /// see `ScheduleAt::cron`.
    Cron(CronExpression),
}

impl ScheduleAt {
    /// A cron schedule in UTC: six fields with seconds first (`"0 */5 * * * *"`: every five
    /// minutes) or the classic five (at second 0). The host parses it (with Cronos) as soon as the
    /// row is committed and first runs it at its next occurrence; an expression it refuses is
    /// reported once, as a failed run, and its row deleted. Panics beyond
    /// `CronExpression::MAX_LEN` bytes.
    pub fn cron(expression: &str) -> ScheduleAt {
        ScheduleAt::Cron(CronExpression::new(expression).unwrap_or_else(|e| panic!("{}", e)))
    }
}

/// A cron expression kept inline, so that `ScheduleAt` stays `Copy` as SpacetimeDB's is.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct CronExpression {
    len: u8,
    bytes: [u8; CronExpression::MAX_LEN],
}

impl CronExpression {
    pub const MAX_LEN: usize = 120;

    pub fn new(expression: &str) -> Result<Self, String> {
        if expression.len() > Self::MAX_LEN {
            return Err(format!("a cron expression has at most {} bytes, not {}", Self::MAX_LEN, expression.len()));
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..expression.len()].copy_from_slice(expression.as_bytes());
        Ok(CronExpression { len: expression.len() as u8, bytes })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("made from a str")
    }
}

impl fmt::Display for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronExpression({:?})", self.as_str())
    }
}

/// A string in values.
impl ProcyonType for CronExpression {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        String::algebraic_type(typespace)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_str().to_string().encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        CronExpression::new(&String::decode(input)?).map_err(DecodeError)
    }
}

impl From<Duration> for ScheduleAt {
    fn from(d: Duration) -> Self {
        ScheduleAt::Interval(d.into())
    }
}

impl From<TimeDuration> for ScheduleAt {
    fn from(d: TimeDuration) -> Self {
        ScheduleAt::Interval(d)
    }
}

impl From<Timestamp> for ScheduleAt {
    fn from(t: Timestamp) -> Self {
        ScheduleAt::Time(t)
    }
}

/// Timestamps and durations are products with one specially named i64 field, so the host
/// can recognise them and show them as RFC 3339 and microseconds.
macro_rules! impl_micros_type {
    ($t:ident, $field:literal, $get:ident, $make:ident) => {
        impl ProcyonType for $t {
            fn algebraic_type(_: &mut Typespace) -> AlgebraicType {
                AlgebraicType::Product(vec![Element::named($field, AlgebraicType::I64)])
            }
            fn encode(&self, out: &mut Vec<u8>) {
                self.$get().encode(out);
            }
            fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
                Ok($t::$make(i64::decode(input)?))
            }
        }
    };
}

impl_micros_type!(Timestamp, "__timestamp_micros_since_unix_epoch__", to_micros_since_unix_epoch, from_micros_since_unix_epoch);
impl_micros_type!(TimeDuration, "__time_duration_micros__", to_micros, from_micros);

impl ProcyonType for ScheduleAt {
    fn algebraic_type(typespace: &mut Typespace) -> AlgebraicType {
        AlgebraicType::Sum(vec![
            Element::named("Interval", TimeDuration::algebraic_type(typespace)),
            Element::named("Time", Timestamp::algebraic_type(typespace)),
            Element::named("Cron", CronExpression::algebraic_type(typespace)),
        ])
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ScheduleAt::Interval(d) => {
                out.push(0);
                d.encode(out);
            }
            ScheduleAt::Time(t) => {
                out.push(1);
                t.encode(out);
            }
            ScheduleAt::Cron(expression) => {
                out.push(2);
                expression.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        match u8::decode(input)? {
            0 => Ok(ScheduleAt::Interval(TimeDuration::decode(input)?)),
            1 => Ok(ScheduleAt::Time(Timestamp::decode(input)?)),
            2 => Ok(ScheduleAt::Cron(CronExpression::decode(input)?)),
            tag => Err(DecodeError(format!("invalid ScheduleAt tag {}", tag))),
        }
    }
}
