//! Wall-clock helpers: the one place that converts between `SystemTime`,
//! protobuf `Timestamp` and Unix seconds.

use prost_types::Timestamp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// The current time as a protobuf timestamp.
pub fn timestamp_now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}
