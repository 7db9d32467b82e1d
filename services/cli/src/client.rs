//! The agency client, now the `liaison-client` crate (clients/rust): these
//! re-exports keep `liaison::client::…` working for the CLI's callers.

pub use liaison_client::subject::{self, Identifiers, SubjectKey, subject_token};
pub use liaison_client::{
    AgencyClient, Receipt, Received, TOKEN_LIFETIME_SECS, VERDICT_TIMEOUT, mint, request,
};
