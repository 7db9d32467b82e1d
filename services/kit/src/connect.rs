//! Connecting to NATS as one user, with that user's own inbox prefix so that
//! request replies and JetStream pulls stay within its permissions. A URL
//! may name several servers, comma-separated (every node of a cluster): the
//! client connects to one and fails over to the others.

use crate::subjects::inbox_prefix;
use crate::users::Credentials;

#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url} as {user:?}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub user: String,
    pub reason: String,
}

/// The servers a URL names: one, or several separated by commas.
pub fn servers(url: &str) -> Vec<String> {
    let list: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        // Let the client say what is wrong with it.
        vec![url.to_owned()]
    } else {
        list
    }
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
    .connect(servers(url))
    .await
    .map_err(|e| ConnectError {
        url: url.to_owned(),
        user: credentials.user.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn several_servers_are_separated_by_commas() {
        assert_eq!(
            super::servers("nats://a:4222, nats://b:4222,,nats://c:4222"),
            vec!["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(super::servers("nats://a:4222"), vec!["nats://a:4222"]);
    }
}
