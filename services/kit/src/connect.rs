//! Connecting to NATS as one user, with that user's own inbox prefix so that
//! request replies and JetStream pulls stay within its permissions.

use crate::subjects::inbox_prefix;
use crate::users::Credentials;

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url} as {user:?}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub user: String,
    pub reason: String,
}

/// Connects to `url` as `credentials`, naming the connection `name`.
pub async fn connect(
    url: &str,
    credentials: &Credentials,
    name: &str,
) -> Result<async_nats::Client, ConnectError> {
    async_nats::ConnectOptions::with_user_and_password(
        credentials.user.clone(),
        credentials.password.clone(),
    )
    .name(name)
    .custom_inbox_prefix(inbox_prefix(&credentials.user))
    .connection_timeout(std::time::Duration::from_secs(5))
    .connect(url)
    .await
    .map_err(|e| ConnectError {
        url: url.to_owned(),
        user: credentials.user.clone(),
        reason: e.to_string(),
    })
}
