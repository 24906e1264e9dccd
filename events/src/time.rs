//! Timestamps: integers on the log, RFC 3339 at the JSON edge.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond resolution.
///
/// Stored as microseconds since the Unix epoch: MessagePack gets a compact integer (decoding
/// is ~1.5× faster than an RFC 3339 string), while human-readable formats (JSON) get RFC 3339.
/// Deserialization accepts both forms in every format, so upcasters may move values through JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Microseconds in one second.
    pub const MICROS_PER_SEC: i64 = 1_000_000;

    /// Builds a timestamp from microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (`2026-11-01T10:00:00Z`, any offset); the result is UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Self, chrono::ParseError> {
        Ok(Self::from(
            DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc),
        ))
    }

    /// This instant as a chrono UTC datetime.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0).single().unwrap_or_default()
    }

    /// RFC 3339 with microseconds only when they are not zero, always `Z`.
    pub fn to_rfc3339(self) -> String {
        let format = if self.0 % Self::MICROS_PER_SEC == 0 {
            SecondsFormat::Secs
        } else {
            SecondsFormat::Micros
        };
        self.to_datetime().to_rfc3339_opts(format, true)
    }

    /// Seconds (fractional) from `earlier` to `self`.
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / Self::MICROS_PER_SEC as f64
    }

    /// This instant plus whole seconds.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0 + seconds * Self::MICROS_PER_SEC)
    }

    /// The wall clock. Only for edges (append time, default `as_of`): never inside a fold.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Self(value.timestamp_micros())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_rfc3339())
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// `human`: JSON and other text formats carry RFC 3339 strings only (an integer there
        /// is a mistake, not microseconds); MessagePack carries the integer.
        struct Visitor {
            human: bool,
        }
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date-time string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                if self.human {
                    return Err(E::invalid_type(de::Unexpected::Signed(v), &self));
                }
                Ok(Timestamp(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                if self.human {
                    return Err(E::invalid_type(de::Unexpected::Unsigned(v), &self));
                }
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v)
                    .map_err(|err| E::custom(format!("invalid RFC 3339 date-time {v:?}: {err}")))
            }
        }
        let human = deserializer.is_human_readable();
        deserializer.deserialize_any(Visitor { human })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_micros() {
        let t = Timestamp::parse_rfc3339("2026-11-01T10:00:00.123456+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-01T08:00:00.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn json_is_a_string_and_msgpack_an_integer() {
        let t = Timestamp::parse_rfc3339("2026-11-01T10:00:00Z").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-01T10:00:00Z\""
        );
        let bytes = rmp_serde::to_vec(&t).unwrap();
        let back: Timestamp = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, t);
        assert!(bytes.len() <= 9);
    }

    #[test]
    fn json_refuses_an_integer_time() {
        let err = serde_json::from_str::<Timestamp>("1793527200").unwrap_err();
        assert!(
            err.to_string().contains(
                "invalid type: integer `1793527200`, expected an RFC 3339 date-time string"
            ),
            "{err}"
        );
    }
}
