//! Errors that keep their cause. A failed NATS or JetStream call becomes a
//! [`NatsError`] saying what was being done, with the async-nats error as
//! its [`source`](std::error::Error::source), never flattened into a string;
//! [`chain`] writes an error and every cause under it on one line, as a
//! service's last log line and the CLI's `error:` line show them.

use std::error::Error;
use std::fmt::Write as _;

/// Any error, boxed, as a cause.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A NATS or JetStream operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("NATS: {doing}")]
pub struct NatsError {
    /// What was being done, such as "subscribe to ingress" or "stream
    /// DECISIONS" (names and sequence numbers, never personal data).
    pub doing: String,
    #[source]
    pub source: BoxError,
}

/// `.nats("what was being done")` on a `Result` from async-nats.
pub trait NatsContext<T> {
    fn nats(self, doing: impl Into<String>) -> Result<T, NatsError>;
}

impl<T, E: Into<BoxError>> NatsContext<T> for Result<T, E> {
    fn nats(self, doing: impl Into<String>) -> Result<T, NatsError> {
        self.map_err(|source| NatsError {
            doing: doing.into(),
            source: source.into(),
        })
    }
}

/// `error` and each of its causes, joined by ": " (what `{:#}` shows for
/// an `anyhow::Error`), skipping a cause whose text its parent already
/// ends with (an error that both wraps and prints its source).
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !out.ends_with(&text) {
            let _ = write!(out, ": {text}");
        }
        cause = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_shown_in_the_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Err::<(), _>(io).nats("stream EVENTS").err();
        let Some(err) = err else {
            panic!("an error was expected");
        };
        assert_eq!(err.to_string(), "NATS: stream EVENTS");
        assert!(err.source().is_some_and(|s| s.to_string() == "refused"));
        assert_eq!(chain(&err), "NATS: stream EVENTS: refused");
    }

    #[test]
    fn a_cause_already_printed_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&err), "outer: inner");
    }
}
