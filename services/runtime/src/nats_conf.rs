//! The text of the nats-server configurations Liaison generates from the
//! users of [`crate::users`]: the `authorization` block and each node of a
//! cluster (routes, JetStream in the cluster's domain, a leaf-node listener
//! for agency sites), plus the environment files that carry their secrets.
//! A node's file holds no secret: it refers to `$NATS_PASSWORD_<USER>`,
//! `$NATS_ROUTE_PASSWORD` and `$NATS_ROUTES`, which nats-server reads from
//! its environment, so the file can be committed or kept in a ConfigMap and
//! the secrets kept apart. An agency site's leaf node is
//! [`crate::nats_leaf`]; starting a server is [`crate::nats_server`].

use crate::users::NatsUser;
use liaison_core::Credentials;
use std::path::{Path, PathBuf};

/// How passwords appear in a rendered `authorization` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passwords {
    /// Written in the file (the child server of `liaison up` and the tests).
    Inline,
    /// `$NATS_PASSWORD_<USER>`, read by nats-server from its environment.
    Env,
}

/// The user routes between the nodes of a cluster authenticate as.
pub const ROUTE_USER: &str = "route";
/// Environment variable holding the routes' password.
pub const ROUTE_PASSWORD_ENV: &str = "NATS_ROUTE_PASSWORD";
/// Environment variable holding the route URLs, credentials included.
pub const ROUTES_ENV: &str = "NATS_ROUTES";
/// The largest message nats-server accepts (1 MiB), as Liaison runs it.
pub const MAX_PAYLOAD: u32 = 1_048_576;

/// The environment variable holding `user`'s password, e.g.
/// `NATS_PASSWORD_SVC_GATEWAY` (user names are `[a-z0-9-]`, so the mapping
/// is one to one).
pub fn password_env(user: &str) -> String {
    format!(
        "NATS_PASSWORD_{}",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Environment variable holding the auth callout's issuer (public; derived
/// from the gateway's password, [`crate::users::callout_issuer`]).
pub const CALLOUT_ISSUER_ENV: &str = "NATS_CALLOUT_ISSUER";

/// Seconds nats-server waits for the auth callout's answer.
pub const CALLOUT_TIMEOUT_SECS: u32 = 2;

/// The accounts, their users and the auth callout
/// (docs/decisions/0020-live-membership.md):
/// - account `LIAISON` (JetStream): the services, the operator and the
///   auditors, each with its own password and permissions; agencies are
///   placed in it by the callout, with only their own subjects;
/// - account `SYS`: the system user the gateway closes connections with;
/// - account `AGENCIES`: nothing but the NKey user that makes nats-server
///   send every client a nonce, and the reason the callout is asked about
///   every connection that is not a service's (`allowed_accounts`).
///
/// The gateway answers the callout (`auth_users`) from the live registry.
pub fn authorization(users: &[NatsUser], passwords: Passwords) -> String {
    use crate::users::{ACCOUNT, GATEWAY, NONCE_ACCOUNT, NONCE_NKEY, SYSTEM_ACCOUNT};
    let render = |account: &str| {
        let mut out = String::new();
        for u in users.iter().filter(|u| u.account == account) {
            let responses = if u.allow_responses {
                ", allow_responses: true"
            } else {
                ""
            };
            let password = match passwords {
                Passwords::Inline => format!("{:?}", u.credentials.password.expose()),
                Passwords::Env => format!("${}", password_env(&u.credentials.user)),
            };
            let subscribe = if u.deny_subscribe.is_empty() {
                quoted_list(&u.subscribe)
            } else {
                format!(
                    "{{ allow: {}, deny: {} }}",
                    quoted_list(&u.subscribe),
                    quoted_list(&u.deny_subscribe)
                )
            };
            let publish = if u.deny_publish.is_empty() {
                quoted_list(&u.publish)
            } else {
                format!(
                    "{{ allow: {}, deny: {} }}",
                    quoted_list(&u.publish),
                    quoted_list(&u.deny_publish)
                )
            };
            out.push_str(&format!(
                "      {{ user: {:?}, password: {password}, permissions: {{ publish: {publish}, subscribe: {subscribe}{responses} }} }}\n",
                u.credentials.user,
            ));
        }
        out
    };
    let issuer = match passwords {
        Passwords::Inline => users
            .iter()
            .find(|u| u.credentials.user == GATEWAY)
            .and_then(|g| crate::users::callout_issuer(&g.credentials.password).ok())
            .map_or_else(|| "\"\"".to_owned(), |i| format!("{i:?}")),
        Passwords::Env => format!("${CALLOUT_ISSUER_ENV}"),
    };
    format!(
        "accounts {{\n  {ACCOUNT}: {{\n    jetstream: enabled\n    users = [\n{liaison}    ]\n  }}\n  \
         {SYSTEM_ACCOUNT}: {{\n    users = [\n{system}    ]\n  }}\n  \
         {NONCE_ACCOUNT}: {{\n    users = [\n      {{ nkey: {NONCE_NKEY:?} }}\n    ]\n  }}\n}}\n\
         system_account: {SYSTEM_ACCOUNT}\n\
         authorization {{\n  timeout: {CALLOUT_TIMEOUT_SECS}\n  auth_callout {{\n    issuer: {issuer}\n    \
         account: {ACCOUNT}\n    auth_users: [{GATEWAY:?}]\n    allowed_accounts: [{NONCE_ACCOUNT:?}]\n  }}\n}}\n",
        liaison = render(ACCOUNT),
        system = render(SYSTEM_ACCOUNT),
    )
}

/// A nats-server's TLS: its certificate and key, the CA client (and route)
/// certificates are verified against, and whether clients must present one.
/// The files are referred to, never written by the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA (PEM) client certificates are verified against (`None`: none asked for).
    pub ca: Option<PathBuf>,
    /// Refuse clients without a certificate signed by `ca` (mutual TLS).
    pub verify: bool,
}

/// Seconds a client has to complete the TLS handshake.
pub const TLS_TIMEOUT_SECS: u32 = 2;

/// Files in a TLS directory: `server.pem`, `server-key.pem`, `ca.pem`.
pub const TLS_CERT_FILE: &str = "server.pem";
pub const TLS_KEY_FILE: &str = "server-key.pem";
pub const TLS_CA_FILE: &str = "ca.pem";

impl ServerTls {
    /// The files of `dir` ([`TLS_CERT_FILE`], [`TLS_KEY_FILE`], [`TLS_CA_FILE`]).
    pub fn in_dir(dir: &Path, verify: bool) -> Self {
        Self {
            cert: dir.join(TLS_CERT_FILE),
            key: dir.join(TLS_KEY_FILE),
            ca: Some(dir.join(TLS_CA_FILE)),
            verify,
        }
    }
}

/// A `tls { ... }` block, indented by `indent` spaces; `verify` forced on
/// (routes: each node proves itself to the others).
pub fn tls_block(tls: &ServerTls, indent: usize, verify: bool) -> String {
    let pad = " ".repeat(indent);
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let mut out = format!(
        "{pad}tls {{\n{pad}  cert_file: {}\n{pad}  key_file: {}\n",
        path(&tls.cert),
        path(&tls.key)
    );
    if let Some(ca) = &tls.ca {
        out.push_str(&format!("{pad}  ca_file: {}\n", path(ca)));
    }
    if verify {
        out.push_str(&format!("{pad}  verify: true\n"));
    }
    out.push_str(&format!("{pad}  timeout: {TLS_TIMEOUT_SECS}\n{pad}}}\n"));
    out
}

/// One node of a cluster: where it listens and keeps its store.
#[derive(Debug, Clone)]
pub struct Node {
    /// `server_name`, unique in the cluster (JetStream needs it).
    pub name: String,
    /// Address every listener binds to, e.g. `0.0.0.0`.
    pub host: String,
    pub client_port: u16,
    pub cluster_port: u16,
    /// Where agency sites' leaf nodes connect (`None`: no leaf nodes).
    pub leaf_port: Option<u16>,
    /// HTTP monitoring (`/healthz`, `/jsz`; `None`: off).
    pub monitor_port: Option<u16>,
    pub store: PathBuf,
    /// JetStream `sync_interval` (e.g. "always"; `None`: nats-server's default).
    pub sync_interval: Option<String>,
    /// TLS for clients and, with the same certificate, between the nodes
    /// (`None`: plain, which production never is).
    pub tls: Option<ServerTls>,
}

/// A cluster: its name and every node's route address (`host:port`).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub routes: Vec<String>,
}

/// The configuration of one node of `cluster`. Secrets come from the
/// environment ([`cluster_env`] writes them).
pub fn node(cluster: &Cluster, node: &Node, users: &[NatsUser]) -> String {
    let host = &node.host;
    let mut out = format!(
        "# Liaison: nats-server node {name:?} of cluster {cluster:?}, generated by\n\
         # `liaison nats-config --cluster-dir`. Each user may reach only its own subjects\n\
         # (docs/decisions/0002-nats-users.md). No secret is written here: nats-server reads\n\
         # them from its environment (`--secrets-dir` writes them to nats.env):\n\
         #   {ROUTE_PASSWORD_ENV}   the password of user {ROUTE_USER:?}, which the routes use\n\
         #   {ROUTES_ENV}           [nats-route://{ROUTE_USER}:<password>@HOST:PORT, ...] for every node:\n\
         #                         {routes}\n\
         #   NATS_PASSWORD_<USER>  each user's password, e.g. {example}\n\
         server_name: {name:?}\n\
         listen: \"{host}:{client}\"\n",
        name = node.name,
        cluster = cluster.name,
        routes = cluster.routes.join(", "),
        example = password_env(crate::users::GATEWAY),
        client = node.client_port,
    );
    if let Some(port) = node.monitor_port {
        out.push_str(&format!("http: \"{host}:{port}\"\n"));
    }
    out.push_str(&format!("max_payload: {MAX_PAYLOAD}\n"));
    if let Some(tls) = &node.tls {
        out.push_str(
            "# Clients must speak TLS (docs/decisions/0015-nats-tls.md); the files are not\n\
             # generated: docs/runbooks/nats-tls.md says what each must hold.\n",
        );
        out.push_str(&tls_block(tls, 0, tls.verify));
    }
    out.push_str(&jetstream(node));
    let route_tls = node
        .tls
        .as_ref()
        .map(|tls| tls_block(tls, 2, true))
        .unwrap_or_default();
    out.push_str(&format!(
        "cluster {{\n  name: {name:?}\n  listen: \"{host}:{port}\"\n{route_tls}  \
         authorization {{ user: {ROUTE_USER:?}, password: ${ROUTE_PASSWORD_ENV} }}\n  \
         routes: ${ROUTES_ENV}\n}}\n",
        name = cluster.name,
        port = node.cluster_port,
    ));
    if let Some(port) = node.leaf_port {
        // Over TLS like clients: a site's leaf logs in with its agency's password.
        let leaf_tls = node
            .tls
            .as_ref()
            .map(|tls| tls_block(tls, 2, tls.verify))
            .unwrap_or_default();
        out.push_str(&format!(
            "leafnodes {{\n  # Agency sites' leaf nodes connect here as their agency's own user.\n  \
             listen: \"{host}:{port}\"\n{leaf_tls}}}\n"
        ));
    }
    out.push_str(&authorization(users, Passwords::Env));
    out
}

fn jetstream(node: &Node) -> String {
    let sync = node
        .sync_interval
        .as_deref()
        .map(|s| format!("  sync_interval: {s:?}\n"))
        .unwrap_or_default();
    format!(
        "jetstream {{\n  store_dir: {:?}\n  domain: {:?}\n{sync}}}\n",
        node.store.display().to_string(),
        liaison_core::subjects::JETSTREAM_DOMAIN,
    )
}

/// The value of `$NATS_ROUTES`: every route URL with the route credentials.
pub fn route_urls(routes: &[String], route_password: &str) -> String {
    let urls: Vec<String> = routes
        .iter()
        .map(|r| format!("nats-route://{ROUTE_USER}:{route_password}@{r}"))
        .collect();
    format!("[{}]", urls.join(","))
}

/// The environment of every node of a cluster (`NAME=value` lines): the
/// route password and URLs, and each user's password. Secret.
pub fn cluster_env(cluster: &Cluster, users: &[NatsUser], route_password: &str) -> String {
    let mut out = format!(
        "# Secrets of the Liaison NATS cluster {:?}: the environment of each nats-server node.\n\
         {ROUTE_PASSWORD_ENV}={route_password}\n{ROUTES_ENV}={}\n",
        cluster.name,
        route_urls(&cluster.routes, route_password),
    );
    for u in users {
        out.push_str(&format!(
            "{}={}\n",
            password_env(&u.credentials.user),
            u.credentials.password.expose()
        ));
        if u.credentials.user == crate::users::GATEWAY
            && let Ok(issuer) = crate::users::callout_issuer(&u.credentials.password)
        {
            out.push_str(&format!("{CALLOUT_ISSUER_ENV}={issuer}\n"));
        }
    }
    out
}

/// One user's credentials as the environment of a Liaison process
/// (`LIAISON_NATS_USER`, `LIAISON_NATS_PASSWORD`). Secret.
pub fn credentials_env(credentials: &Credentials) -> String {
    format!(
        "LIAISON_NATS_USER={}\nLIAISON_NATS_PASSWORD={}\n",
        credentials.user,
        credentials.password.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_at(i: usize) -> Node {
        Node {
            name: format!("liaison-nats-{i}"),
            host: "0.0.0.0".into(),
            client_port: 4222,
            cluster_port: 6222,
            leaf_port: Some(7422),
            monitor_port: Some(8222),
            store: "/data/jetstream".into(),
            sync_interval: Some("always".into()),
            tls: None,
        }
    }

    #[test]
    fn a_tls_node_refers_to_its_files_for_clients_and_routes() {
        let users = crate::users::plan();
        let cluster = Cluster {
            name: "liaison".into(),
            routes: vec!["a:6222".into(), "b:6222".into(), "c:6222".into()],
        };
        let plain = node(&cluster, &node_at(0), &users);
        assert!(!plain.contains("tls {"), "{plain}");
        let mut tls_node = node_at(0);
        tls_node.tls = Some(ServerTls::in_dir(Path::new("/etc/nats/tls"), false));
        let text = node(&cluster, &tls_node, &users);
        let client = "tls {\n  cert_file: \"/etc/nats/tls/server.pem\"\n  \
                      key_file: \"/etc/nats/tls/server-key.pem\"\n  \
                      ca_file: \"/etc/nats/tls/ca.pem\"\n  timeout: 2\n}\n";
        assert!(text.contains(client), "{text}");
        assert!(
            text.contains("  tls {\n    cert_file: \"/etc/nats/tls/server.pem\"")
                && text.contains("    verify: true\n"),
            "routes verify each other: {text}"
        );
        let leaf = text.split("leafnodes {").nth(1).unwrap_or_default();
        assert!(
            leaf.contains("  tls {\n    cert_file: \"/etc/nats/tls/server.pem\""),
            "agency sites' leaf nodes connect over TLS: {text}"
        );
    }

    #[test]
    fn a_node_refers_to_its_secrets_and_writes_none() {
        let users = crate::users::plan();
        let cluster = Cluster {
            name: "liaison".into(),
            routes: vec!["a:6222".into(), "b:6222".into(), "c:6222".into()],
        };
        let text = node(&cluster, &node_at(1), &users);
        assert!(text.contains("server_name: \"liaison-nats-1\""), "{text}");
        assert!(text.contains("routes: $NATS_ROUTES"), "{text}");
        assert!(text.contains("password: $NATS_PASSWORD_SYSTEM"), "{text}");
        assert!(text.contains("issuer: $NATS_CALLOUT_ISSUER"), "{text}");
        assert!(
            text.contains("password: $NATS_PASSWORD_SVC_GATEWAY"),
            "{text}"
        );
        assert!(text.contains("listen: \"0.0.0.0:7422\""), "{text}");
        for u in &users {
            assert!(
                !text.contains(u.credentials.password.expose()),
                "secret written"
            );
        }
        let env = cluster_env(&cluster, &users, "pROUTE");
        assert!(env.contains("NATS_ROUTES=[nats-route://route:pROUTE@a:6222,"));
        let gateway = users
            .iter()
            .find(|u| u.credentials.user == crate::users::GATEWAY)
            .map(|u| u.credentials.password.clone())
            .unwrap_or_else(|| panic!("gateway"));
        assert!(env.contains(&format!("NATS_PASSWORD_SVC_GATEWAY={}", gateway.expose())));
        assert!(env.contains(&format!(
            "NATS_CALLOUT_ISSUER={}",
            crate::users::callout_issuer(&gateway).unwrap_or_default()
        )));
    }

    #[test]
    fn env_names_map_user_names_one_to_one() {
        assert_eq!(password_env("nhs-trust"), "NATS_PASSWORD_NHS_TRUST");
        assert_eq!(password_env("svc-audit"), "NATS_PASSWORD_SVC_AUDIT");
    }
}
