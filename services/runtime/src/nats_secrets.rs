//! The secrets of a NATS cluster kept from one generation of its
//! configuration to the next: the `NAME=value` environment file nats-server
//! nodes read their passwords from ([`crate::nats_conf::cluster_env`]).
//! Regenerating after an agency joins keeps every password already issued
//! and adds one for the newcomer, so no running party has to change its
//! own. Writing the files is the caller's business.

use crate::nats_conf::{ROUTE_PASSWORD_ENV, password_env};
use crate::users::{NatsUser, password};
use liaison_core::Secret;
use std::collections::BTreeMap;

/// A line of an environment file that is not `NAME=value`.
#[derive(Debug, thiserror::Error)]
#[error("{origin} line {line}: expected NAME=value (NAME of A-Z, 0-9 and _), found {found:?}")]
pub struct EnvFileError {
    pub origin: String,
    pub line: usize,
    /// The variable's name part only: never the value, which may be a secret.
    pub found: String,
}

/// Parses `NAME=value` lines; blank lines and `#` comments are skipped.
pub fn parse_env(text: &str, origin: &str) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_ok = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        };
        match line.split_once('=') {
            Some((name, value)) if name_ok(name) => {
                out.insert(name.to_owned(), value.to_owned());
            }
            _ => {
                return Err(EnvFileError {
                    origin: origin.to_owned(),
                    line: n + 1,
                    found: line
                        .split_once('=')
                        .map_or("a line without '='", |(name, _)| name)
                        .to_owned(),
                });
            }
        }
    }
    Ok(out)
}

/// What [`reuse`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reused {
    /// Users whose password was already issued and is kept.
    pub kept: Vec<String>,
    /// Users given a fresh password now.
    pub added: Vec<String>,
    /// Variables of the old file no longer used (users gone from the registry).
    pub dropped: Vec<String>,
}

/// Gives each user of `users` the password `previous` holds for it (fresh
/// ones stay for the others) and returns the route password to use: the
/// previous one, or a fresh one.
pub fn reuse(users: &mut [NatsUser], previous: &BTreeMap<String, String>) -> (String, Reused) {
    let mut reused = Reused::default();
    let mut used = vec![
        ROUTE_PASSWORD_ENV.to_owned(),
        crate::nats_conf::ROUTES_ENV.to_owned(),
        crate::nats_conf::CALLOUT_ISSUER_ENV.to_owned(),
    ];
    for user in users.iter_mut() {
        let name = password_env(&user.credentials.user);
        match previous.get(&name) {
            Some(old) if !old.is_empty() => {
                user.credentials.password = Secret::new(old.as_str());
                reused.kept.push(user.credentials.user.clone());
            }
            _ => reused.added.push(user.credentials.user.clone()),
        }
        used.push(name);
    }
    // Derived from the gateway's, which may just have been kept.
    crate::users::derive_system(users);
    reused.dropped = previous
        .keys()
        .filter(|k| !used.contains(k))
        .cloned()
        .collect();
    let route = previous
        .get(ROUTE_PASSWORD_ENV)
        .filter(|p| !p.is_empty())
        .cloned()
        .unwrap_or_else(|| password().expose().to_owned());
    (route, reused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_already_issued_are_kept_and_newcomers_get_one() {
        let previous = parse_env(
            "# old\nNATS_ROUTE_PASSWORD=pR\nNATS_PASSWORD_SVC_GATEWAY=pG\n\nNATS_PASSWORD_GONE=pX\nNATS_CALLOUT_ISSUER=A\n",
            "nats.env",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut users = crate::users::plan();
        let (route, reused) = reuse(&mut users, &previous);
        assert_eq!(route, "pR");
        assert_eq!(reused.kept, vec!["svc-gateway"]);
        assert!(reused.added.contains(&"svc-audit".to_owned()));
        assert_eq!(reused.dropped, vec!["NATS_PASSWORD_GONE"]);
        let password = |name: &str| {
            users
                .iter()
                .find(|u| u.credentials.user == name)
                .map(|u| u.credentials.password.expose().to_owned())
        };
        assert_eq!(password("svc-gateway").as_deref(), Some("pG"));
        // The system user's follows the gateway's kept one.
        assert_eq!(
            password("system"),
            Some(
                crate::users::system_password(&Secret::new("pG"))
                    .expose()
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_bad_line_is_named_without_its_value() {
        let err = parse_env("NATS_ROUTE_PASSWORD=x\nnot a line secret\n", "s/nats.env")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("s/nats.env line 2") && !err.contains("secret"),
            "{err}"
        );
        let err = parse_env("lower=secret\n", "f")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("\"lower\"") && !err.contains("secret"),
            "{err}"
        );
    }
}
