//! NATS identity that follows the live registry: the gateway answers
//! nats-server's auth callout (docs/decisions/0020-live-membership.md).
//!
//! Agencies are not users in nats-server's configuration. An agency's
//! systems connect with its own NKey, registered in its registry entry
//! (`nats_keys`); nats-server sends every such connection to
//! `$SYS.REQ.USER.AUTH` as a JWT, and a gateway (any replica, a queue
//! group) answers it:
//! - the client's signature of the server's nonce is checked against the
//!   NKey it names (nats-server does not check it before calling out);
//! - the NKey must be registered to an agency in the live registry, and
//!   the agency must not be suspended;
//! - the answer is a user JWT, signed with the callout key (derived from
//!   the gateway's password, [`liaison_runtime::users::callout_key`]), that
//!   places the connection in account `LIAISON` with exactly
//!   [`liaison_runtime::users::agency_permissions`] and names the agency.
//!
//! An agency suspended or removed, or a NATS key of its retired, loses its
//! open connections at once ([`Callout::close`]): the gateway asks every
//! server for the agency's connections (`$SYS.REQ.SERVER.PING.CONNZ`, as
//! the system user) and closes each (`$SYS.REQ.SERVER.<id>.KICK`). Their
//! reconnections come back here and are refused.

use crate::Shared;
use base64::Engine as _;
use futures_util::StreamExt as _;
use liaison_core::{AgencyId, NatsContext as _, subjects};
use liaison_runtime::users;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Largest authorization request read.
const MAX_REQUEST: usize = 64 * 1024;

/// How long the servers' answers to a connection count are gathered.
const CONNZ_WAIT: Duration = Duration::from_millis(300);

/// Who a login is, as the user JWT names them, and what they may do.
struct Login {
    name: String,
    publish: Vec<String>,
    subscribe: Vec<String>,
}

/// The gateway's part in NATS authentication.
pub struct Callout {
    key: nkeys::KeyPair,
    issuer: String,
    /// Auditors, each logging in as themselves with their own NKey
    /// ([`liaison_runtime::auditors`]).
    auditors: Option<liaison_runtime::auditors::Auditors>,
    /// A connection in the system account, to close connections.
    system: Option<async_nats::Client>,
}

impl Callout {
    /// The callout of a gateway whose NATS password is `password` (the key
    /// is derived from it); `system`: its system-account connection.
    pub fn new(
        password: &liaison_core::Secret,
        system: Option<async_nats::Client>,
        auditors: Option<liaison_runtime::auditors::Auditors>,
    ) -> Result<Self, String> {
        let key = users::callout_key(password)?;
        Ok(Self {
            issuer: key.public_key(),
            key,
            system,
            auditors,
        })
    }

    /// Answers one authorization request: the JWT to send back.
    pub fn answer(&self, shared: &Shared, request: &[u8]) -> (String, Result<String, String>) {
        let parsed = match Request::read(request) {
            Ok(r) => r,
            Err(e) => return (String::new(), Err(e)),
        };
        let decided = self.decide(shared, &parsed);
        let now = liaison_core::time::unix_now();
        let mut nats = serde_json::json!({
            "type": "authorization_response",
            "version": 2,
        });
        match &decided {
            Ok(Login {
                name,
                publish,
                subscribe,
            }) => {
                let user = serde_json::json!({
                    "jti": jti(),
                    "iat": now,
                    "iss": self.issuer,
                    "sub": parsed.user_nkey,
                    "aud": users::ACCOUNT,
                    "name": name,
                    "nats": {
                        "pub": { "allow": publish },
                        "sub": { "allow": subscribe },
                        "subs": -1, "data": -1, "payload": -1,
                        "type": "user",
                        "version": 2,
                    },
                });
                nats["jwt"] = self.sign(&user).into();
            }
            Err(e) => nats["error"] = e.as_str().into(),
        }
        let response = serde_json::json!({
            "jti": jti(),
            "iat": now,
            "iss": self.issuer,
            "sub": parsed.user_nkey,
            "aud": parsed.server_id,
            "nats": nats,
        });
        (self.sign(&response), decided.map(|login| login.name))
    }

    fn decide(&self, shared: &Shared, request: &Request) -> Result<Login, String> {
        let nkey = request
            .nkey
            .as_deref()
            .ok_or("no NKey: agencies connect with the NKey registered for them")?;
        let nonce = request
            .nonce
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or("no signed nonce")?;
        let sig = request.sig.as_deref().ok_or("no signature of the nonce")?;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(sig))
            .map_err(|_| "the nonce's signature is not base64")?;
        let public = nkeys::KeyPair::from_public_key(nkey).map_err(|_| "not an NKey")?;
        public
            .verify(nonce.as_bytes(), &sig)
            .map_err(|_| "the nonce's signature does not verify with the NKey")?;
        let Some(agency) = shared.registry().nats_key_owner(nkey).cloned() else {
            // An auditor, as themselves: the ledger's requests, and LEDGER
            // itself only for those whose scope is the whole ledger.
            if let Some(auditor) = self.auditors.as_ref().and_then(|a| a.nats_key_owner(nkey)) {
                let (publish, subscribe) =
                    users::auditor_permissions(&auditor.id, auditor.scope.is_none());
                return Ok(Login {
                    name: liaison_runtime::auditors::nats_name(&auditor.id),
                    publish,
                    subscribe,
                });
            }
            return Err(format!(
                "NKey {nkey} is not registered to any agency or auditor"
            ));
        };
        shared
            .membership
            .check(&agency)
            .map_err(|refusal| refusal.to_string())?;
        let (publish, subscribe) = users::agency_permissions(&agency);
        Ok(Login {
            name: agency.to_string(),
            publish,
            subscribe,
        })
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
        let body = b64(claims.to_string().as_bytes());
        let input = format!("{header}.{body}");
        let signature = self.key.sign(input.as_bytes()).unwrap_or_default();
        format!("{input}.{}", b64(&signature))
    }

    /// Closes every open connection of `agency`, on every server; returns
    /// how many were closed.
    pub async fn close(&self, agency: &AgencyId) -> Result<usize, String> {
        let Some(system) = &self.system else {
            return Err("no system-account connection (nats.password not set)".into());
        };
        let inbox = system.new_inbox();
        let mut answers = system
            .subscribe(inbox.clone())
            .await
            .map_err(|e| e.to_string())?;
        let filter = serde_json::json!({
            "acc": users::ACCOUNT,
            "user": agency.as_str(),
            "limit": 100_000,
        });
        system
            .publish_with_reply(
                "$SYS.REQ.SERVER.PING.CONNZ",
                inbox,
                filter.to_string().into(),
            )
            .await
            .map_err(|e| e.to_string())?;
        system.flush().await.map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        let deadline = tokio::time::sleep(CONNZ_WAIT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                answer = answers.next() => match answer {
                    Some(answer) => found.extend(connections(&answer.payload)),
                    None => break,
                },
                () = &mut deadline => break,
            }
        }
        let mut closed = 0;
        for (server, cid) in found {
            let kick = system
                .request(
                    format!("$SYS.REQ.SERVER.{server}.KICK"),
                    serde_json::json!({ "cid": cid }).to_string().into(),
                )
                .await;
            match kick {
                Ok(reply) if !String::from_utf8_lossy(&reply.payload).contains("\"error\"") => {
                    closed += 1;
                }
                Ok(_) | Err(_) => {}
            }
        }
        info!(agency = %agency, closed, "Agency's NATS connections closed");
        Ok(closed)
    }
}

/// `(server id, cid)` of each connection in one server's CONNZ answer.
fn connections(payload: &[u8]) -> Vec<(String, u64)> {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return vec![];
    };
    let Some(server) = answer["server"]["id"].as_str() else {
        return vec![];
    };
    // Only a server id as nats-server makes them goes into a subject.
    if !server.chars().all(|c| c.is_ascii_alphanumeric()) {
        return vec![];
    }
    answer["data"]["connections"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|c| c["cid"].as_u64())
                .map(|cid| (server.to_owned(), cid))
                .collect()
        })
        .unwrap_or_default()
}

fn jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What is read from nats-server's authorization request.
#[derive(Debug)]
struct Request {
    server_id: String,
    user_nkey: String,
    nkey: Option<String>,
    sig: Option<String>,
    nonce: Option<String>,
}

impl Request {
    /// Reads the request JWT, checking its signature by the server that sent it.
    fn read(jwt: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Claims {
            iss: String,
            nats: Nats,
        }
        #[derive(Deserialize)]
        struct Nats {
            server_id: ServerId,
            user_nkey: String,
            #[serde(default)]
            client_info: ClientInfo,
            #[serde(default)]
            connect_opts: ConnectOpts,
        }
        #[derive(Deserialize)]
        struct ServerId {
            id: String,
        }
        #[derive(Deserialize, Default)]
        struct ClientInfo {
            #[serde(default)]
            nonce: Option<String>,
        }
        #[derive(Deserialize, Default)]
        struct ConnectOpts {
            #[serde(default)]
            nkey: Option<String>,
            #[serde(default)]
            sig: Option<String>,
        }
        if jwt.len() > MAX_REQUEST {
            return Err(format!("authorization request over {MAX_REQUEST} bytes"));
        }
        let text = std::str::from_utf8(jwt).map_err(|_| "authorization request not UTF-8")?;
        let mut parts = text.trim().split('.');
        let (Some(header), Some(body), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("authorization request is not a JWT".into());
        };
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| "authorization request: bad base64url".to_owned())
        };
        let claims: Claims = serde_json::from_slice(&decode(body)?)
            .map_err(|e| format!("authorization request: {e}"))?;
        let server = nkeys::KeyPair::from_public_key(&claims.iss)
            .map_err(|_| "authorization request: issuer is not an NKey")?;
        server
            .verify(format!("{header}.{body}").as_bytes(), &decode(signature)?)
            .map_err(|_| "authorization request: signature does not verify")?;
        Ok(Self {
            server_id: claims.nats.server_id.id,
            user_nkey: claims.nats.user_nkey,
            nkey: claims.nats.connect_opts.nkey,
            sig: claims.nats.connect_opts.sig,
            nonce: claims.nats.client_info.nonce,
        })
    }
}

/// Answers authorization requests until `shutdown`.
pub async fn serve(
    shared: Arc<Shared>,
    mut requests: async_nats::Subscriber,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return,
            message = requests.next() => message,
        };
        let Some(message) = message else { return };
        let shared = shared.clone();
        tokio::spawn(async move {
            let (Some(callout), Some(reply)) = (&shared.callout, message.reply.clone()) else {
                return;
            };
            let (jwt, decided) = callout.answer(&shared, &message.payload);
            match &decided {
                Ok(_) => shared.metrics.logins.inc(&["accepted"]),
                Err(reason) => {
                    shared.metrics.logins.inc(&["refused"]);
                    warn!(reason = %reason, "NATS login refused");
                }
            }
            if jwt.is_empty() {
                return;
            }
            if let Err(e) = shared.client.publish(reply, jwt.into()).await {
                warn!(error = %e, "Auth callout answer not sent");
            }
        });
    }
}

/// Subscribes to the auth callout's requests (a queue group of gateways).
pub async fn subscribe(
    client: &async_nats::Client,
) -> Result<async_nats::Subscriber, liaison_core::NatsError> {
    client
        .queue_subscribe(subjects::AUTH_CALLOUT, subjects::GATEWAY_QUEUE.to_owned())
        .await
        .nats("subscribe to the auth callout")
}
