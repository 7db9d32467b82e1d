//! Reaching NATS as production does (docs/decisions/0015-nats-tls.md): the
//! whole system on a nats-server that serves TLS only, with certificates made
//! here (a CA, a server certificate for `localhost`/`127.0.0.1`, a client
//! certificate for mutual TLS); clear errors for a plain server, an untrusted
//! certificate, a missing client certificate and missing files; and the two
//! other ways an agency authenticates, an NKey and a `.creds` file (a user
//! JWT of an account of an operator, the server in operator mode with a
//! memory resolver), all made here and checked by the real server.

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{FutureExt as _, StreamExt as _};
use liaison_client::{AgencyClient, NatsAuth, NatsOptions};
use liaison_core::connect::{TlsOptions, connect};
use liaison_core::{AgencyId, subjects};
use liaison_runtime::nats_conf::ServerTls;
use liaison_runtime::nats_server::{NatsServer, ServerOptions};
use liaison_runtime::users::{self, NatsUser};
use liaison_system::devtls::{DevCa, SERVER_NAMES, write};
use liaison_system::system::{System, UpOptions};
use liaison_tests::nats_process::{NatsProcess, free_ports};
use liaison_tests::{config, inbox_exactly, key_pem, referral};
use nkeys::KeyPair;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Certificates made for one test: the partnership's CA with a server
/// certificate for this machine and a client certificate, and a second CA
/// nobody here trusts.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A CA that did not sign the server's certificate.
    other_ca: PathBuf,
    /// A server certificate signed by `other_ca`.
    other_server_cert: PathBuf,
    other_server_key: PathBuf,
}

/// What an attempt that should fail said (empty if it succeeded).
async fn error_text<T, E: std::fmt::Display>(
    attempt: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> String {
    attempt
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

fn pki() -> Result<Pki> {
    let dir = tempfile::tempdir()?;
    let at = |name: &str| dir.path().join(name);
    let ca = DevCa::new("Liaison test NATS CA")?;
    let server = ca.server(&SERVER_NAMES)?;
    let client = ca.client("svc-test")?;
    let other = DevCa::new("Someone else's CA")?;
    let other_server = other.server(&SERVER_NAMES)?;
    let pki = Pki {
        ca: at("ca.pem"),
        server_cert: at("server.pem"),
        server_key: at("server-key.pem"),
        client_cert: at("client.pem"),
        client_key: at("client-key.pem"),
        other_ca: at("other-ca.pem"),
        other_server_cert: at("other-server.pem"),
        other_server_key: at("other-server-key.pem"),
        _dir: dir,
    };
    write(&pki.ca, &ca.cert_pem(), 0o644)?;
    write(&pki.server_cert, &server.cert_pem, 0o644)?;
    write(&pki.server_key, &server.key_pem, 0o600)?;
    write(&pki.client_cert, &client.cert_pem, 0o644)?;
    write(&pki.client_key, &client.key_pem, 0o600)?;
    write(&pki.other_ca, &other.cert_pem(), 0o644)?;
    write(&pki.other_server_cert, &other_server.cert_pem, 0o644)?;
    write(&pki.other_server_key, &other_server.key_pem, 0o600)?;
    Ok(pki)
}

impl Pki {
    /// The server side: this machine's certificate, clients verified when `verify`.
    fn server(&self, verify: bool) -> ServerTls {
        ServerTls {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            ca: Some(self.ca.clone()),
            verify,
        }
    }
}

/// Liaison's users, and a static password user "police" with the
/// permissions the auth callout grants the police: these tests are about
/// TLS, on a server with no gateway to answer agencies' NKey logins.
fn plan_with_police() -> Result<Vec<NatsUser>> {
    let mut plan = users::plan();
    plan.push(users::inspector());
    let (publish, subscribe) = users::agency_permissions(&AgencyId::parse("police")?);
    plan.push(NatsUser {
        credentials: liaison_core::Credentials {
            user: "police".into(),
            password: users::password(),
        },
        publish,
        subscribe,
        deny_subscribe: vec![],
        deny_publish: vec![],
        allow_responses: false,
        account: users::ACCOUNT,
    });
    Ok(plan)
}

/// A liaison-runtime nats-server for the users of one agency (police), TLS as given.
fn server_for_police(tls: Option<ServerTls>) -> Result<(NatsServer, Vec<NatsUser>)> {
    let plan = plan_with_police()?;
    let server = NatsServer::start(&ServerOptions {
        users: plan.clone(),
        tls,
        ..ServerOptions::default()
    })?;
    Ok((server, plan))
}

fn credentials(plan: &[NatsUser], user: &str) -> Result<liaison_core::Credentials> {
    plan.iter()
        .find(|u| u.credentials.user == user)
        .map(|u| u.credentials.clone())
        .with_context(|| format!("no user {user}"))
}

/// The first line the server sends on a new TCP connection (its INFO).
fn server_info(url: &str) -> Result<serde_json::Value> {
    use std::io::BufRead as _;
    let addr = url.trim_start_matches("nats://");
    let stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line)?;
    let json = line
        .strip_prefix("INFO ")
        .with_context(|| format!("not an INFO line: {line:?}"))?;
    Ok(serde_json::from_str(json.trim())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)]
async fn the_whole_system_runs_on_a_tls_only_nats_server() -> Result<()> {
    let pki = pki()?;
    let mut config = config();
    config.nats.tls_required = true;
    config.nats.tls_ca = pki.ca.clone();
    let system = System::start(
        config,
        UpOptions {
            nats_tls: Some(pki.server(false)),
            ..UpOptions::default()
        },
    )
    .await?;
    // The server offers nothing in the clear: every client must upgrade.
    let info = server_info(&system.url())?;
    assert_eq!(info["tls_required"], json!(true), "{info}");

    // Every service connected over TLS (they are running), and so do agencies.
    let over_tls = |agency: &str| -> Result<NatsOptions> {
        Ok(
            NatsOptions::with_auth(system.url(), liaison_tests::nkey(agency))
                .require_tls(Some(pki.ca.clone())),
        )
    };
    let signer = |agency: &str| -> Result<liaison_core::tokens::Signer> {
        liaison_core::tokens::Signer::from_pem(&key_pem(agency)?, None).map_err(anyhow::Error::msg)
    };
    let audience = system.config.gateway.audience.clone();
    let started = Instant::now();
    let school = AgencyClient::connect_with(
        AgencyId::parse("school-a")?,
        signer("school-a")?,
        &audience,
        &over_tls("school-a")?,
    )
    .await?;
    let tls_connect = started.elapsed();
    let council = AgencyClient::connect_with(
        AgencyId::parse("council")?,
        signer("council")?,
        &audience,
        &over_tls("council")?,
    )
    .await?;
    let receipt = school.submit(&referral("school-a", "tls-ref-1")).await?;
    assert_eq!(receipt.recipients, ["council", "police"]);
    let delivered = inbox_exactly(&council, 1).await?;
    assert_eq!(
        delivered[0].envelope.as_ref().map(|e| e.id.as_str()),
        Some("tls-ref-1")
    );

    // An agency that does not trust the partnership's CA is refused, by name.
    let error = error_text(AgencyClient::connect_with(
        AgencyId::parse("police")?,
        signer("police")?,
        &audience,
        &NatsOptions::with_auth(system.url(), liaison_tests::nkey("police"))
            .require_tls(Some(pki.other_ca.clone())),
    ))
    .await;
    assert!(
        error.contains("not signed by a CA it trusts")
            && error.contains(&pki.other_ca.display().to_string()),
        "{error}"
    );
    eprintln!("figure: an agency's first connection over TLS took {tls_connect:?}");
    system.shutdown().await
}

#[tokio::test]
async fn a_client_requiring_tls_is_refused_by_a_plain_server_with_a_clear_error() -> Result<()> {
    let pki = pki()?;
    let (server, plan) = server_for_police(None)?;
    let police = credentials(&plan, "police")?;
    let error = error_text(connect(
        &server.url(),
        &police,
        &TlsOptions::required(&pki.ca),
        "tls-wanted",
    ))
    .await;
    assert!(
        error.contains(&server.url()) && error.contains("TLS is required"),
        "{error}"
    );
    // The agency client says the same.
    let error = error_text(liaison_client::connect::connect(
        &AgencyId::parse("police")?,
        &NatsOptions::new(server.url(), police.clone()).require_tls(Some(pki.ca.clone())),
    ))
    .await;
    assert!(error.contains("TLS is required"), "{error}");
    // Without TLS asked for, the same user connects.
    connect(&server.url(), &police, &TlsOptions::default(), "plain").await?;
    Ok(())
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() -> Result<()> {
    let pki = pki()?;
    let (server, plan) = server_for_police(Some(ServerTls {
        cert: pki.other_server_cert.clone(),
        key: pki.other_server_key.clone(),
        ca: None,
        verify: false,
    }))?;
    let police = credentials(&plan, "police")?;
    let error = error_text(connect(
        &server.url(),
        &police,
        &TlsOptions::required(&pki.ca),
        "trusting-ours",
    ))
    .await;
    assert!(
        error.contains("not signed by a CA it trusts")
            && error.contains(&pki.ca.display().to_string()),
        "{error}"
    );
    // Trusting the CA that did sign it, the same user connects.
    connect(
        &server.url(),
        &police,
        &TlsOptions::required(&pki.other_ca),
        "trusting-theirs",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_accepts_one_with() -> Result<()> {
    let pki = pki()?;
    let (server, plan) = server_for_police(Some(pki.server(true)))?;
    let police = credentials(&plan, "police")?;
    let error = error_text(connect(
        &server.url(),
        &police,
        &TlsOptions::required(&pki.ca),
        "no-client-cert",
    ))
    .await;
    assert!(error.contains("cannot connect to NATS"), "{error}");
    assert!(error.contains("client certificate"), "{error}");

    // A certificate signed by another CA is refused too.
    let other_cert = (pki.other_server_cert.clone(), pki.other_server_key.clone());
    let outsider = TlsOptions::required(&pki.ca).with_client_cert(other_cert.0, other_cert.1);
    assert!(
        connect(&server.url(), &police, &outsider, "outsider")
            .await
            .is_err()
    );

    let with_cert =
        TlsOptions::required(&pki.ca).with_client_cert(&pki.client_cert, &pki.client_key);
    let client = connect(&server.url(), &police, &with_cert, "with-client-cert").await?;
    // The user's permissions still apply: police sends on its own ingress,
    // the operator (its own message back says its subscription is in place)
    // receives it, both over mutual TLS.
    let operator = connect(
        &server.url(),
        &credentials(&plan, users::INSPECTOR)?,
        &with_cert,
        "operator",
    )
    .await?;
    let mut ingress = operator.subscribe("liaison.ingress.>").await?;
    operator
        .publish("liaison.ingress.operator.ready", "ready".into())
        .await?;
    next(&mut ingress, "the operator's own message").await?;
    client
        .publish("liaison.ingress.police.mtls", "over mutual TLS".into())
        .await?;
    let message = next(&mut ingress, "police's message").await?;
    assert_eq!(&message.payload[..], b"over mutual TLS");
    Ok(())
}

#[tokio::test]
async fn missing_or_wrong_tls_files_are_named() -> Result<()> {
    let pki = pki()?;
    let (server, plan) = server_for_police(Some(pki.server(true)))?;
    let police = credentials(&plan, "police")?;
    let agency = AgencyId::parse("police")?;
    let missing = pki.ca.with_file_name("missing.pem");
    let cases = [
        (
            TlsOptions::required(&missing),
            "root CA file",
            missing.clone(),
        ),
        (
            TlsOptions::required(&pki.ca).with_client_cert(&missing, &pki.client_key),
            "client certificate",
            missing.clone(),
        ),
        (
            TlsOptions::required(&pki.ca).with_client_cert(&pki.client_cert, &missing),
            "client key",
            missing.clone(),
        ),
        // A certificate where the key should be: named, and no key shown.
        (
            TlsOptions::required(&pki.ca).with_client_cert(&pki.client_cert, &pki.client_cert),
            "client key",
            pki.client_cert.clone(),
        ),
    ];
    for (tls, what, path) in cases {
        let error = error_text(connect(&server.url(), &police, &tls, "files")).await;
        assert!(
            error.contains(what) && error.contains(&path.display().to_string()),
            "{what}: {error}"
        );
        let mut options = NatsOptions::new(server.url(), police.clone());
        options.tls = tls;
        let error = error_text(liaison_client::connect::connect(&agency, &options)).await;
        assert!(
            error.contains(what) && error.contains(&path.display().to_string()),
            "{what}: {error}"
        );
        assert!(!error.contains("PRIVATE KEY"), "{error}");
    }

    // A service's configuration names the key and the file, before connecting.
    let mut config = config();
    config.nats.tls_ca = missing.clone();
    let error = error_text(System::start(
        config,
        UpOptions {
            inspector: true,
            ..UpOptions::default()
        },
    ))
    .await;
    assert!(
        error.contains("nats.tls_ca") && error.contains(&missing.display().to_string()),
        "{error}"
    );
    Ok(())
}

/// Writes `text` to a new file `name` in `dir`, mode 0600.
fn secret_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    write(&path, text, 0o600)?;
    Ok(path)
}

/// Starts nats-server with `conf` (its `listen` is added) on a free port.
fn start_raw(dir: &Path, conf: &str) -> Result<(NatsProcess, String)> {
    let port = free_ports(1)?[0];
    let path = dir.join("nats-server.conf");
    std::fs::write(&path, format!("listen: \"127.0.0.1:{port}\"\n{conf}"))?;
    let process = NatsProcess::start(&path, &BTreeMap::new(), &dir.join("nats-server.log"), port)?;
    Ok((process, format!("nats://127.0.0.1:{port}")))
}

/// The next message of `sub`, within 5 s.
async fn next(sub: &mut async_nats::Subscriber, what: &str) -> Result<async_nats::Message> {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .with_context(|| format!("waiting for {what}"))?
        .with_context(|| format!("subscription closed waiting for {what}"))
}

fn quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test]
async fn an_nkey_user_reaches_its_own_subjects_and_no_others() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Police's and the operator's permissions as Liaison plans them, each
    // authenticated by an NKey instead of a password.
    let plan = plan_with_police()?;
    let mut entries = String::new();
    let mut seeds = BTreeMap::new();
    for user in plan
        .iter()
        .filter(|u| ["police", users::INSPECTOR].contains(&u.credentials.user.as_str()))
    {
        let key = KeyPair::new_user();
        entries.push_str(&format!(
            "    {{ nkey: {:?}, permissions: {{ publish: {}, subscribe: {} }} }}\n",
            key.public_key(),
            quoted(&user.publish),
            quoted(&user.subscribe),
        ));
        seeds.insert(user.credentials.user.clone(), key.seed()?);
    }
    let (_server, url) = start_raw(
        dir.path(),
        &format!("authorization {{\n  users = [\n{entries}  ]\n}}\n"),
    )?;
    let seed_file = |user: &str| -> Result<PathBuf> {
        let seed = seeds.get(user).context("no seed")?;
        secret_file(dir.path(), &format!("{user}.nk"), &format!("{seed}\n"))
    };
    let nkey = |user: &str| -> Result<NatsOptions> {
        Ok(NatsOptions::with_auth(
            url.clone(),
            NatsAuth::NKeySeedFile(seed_file(user)?),
        ))
    };
    let police_id = AgencyId::parse("police")?;
    let police = liaison_client::connect::connect(&police_id, &nkey("police")?).await?;
    let operator =
        liaison_client::connect::connect(&AgencyId::parse("operator")?, &nkey(users::INSPECTOR)?)
            .await?;

    // Within its permissions: its own ingress (the operator listens; its
    // own message back says the server has its subscription) ...
    let mut ingress = operator.subscribe("liaison.ingress.>").await?;
    operator
        .publish("liaison.ingress.operator.ready", "ready".into())
        .await?;
    let ready = next(&mut ingress, "the operator's own message").await?;
    assert_eq!(ready.subject.as_str(), "liaison.ingress.operator.ready");
    // ... but not another agency's: refused, so the operator's next message
    // is the allowed one police sent after it on the same connection.
    police
        .publish("liaison.ingress.council.envelope", "forged".into())
        .await?;
    police
        .publish("liaison.ingress.police.envelope", "own".into())
        .await?;
    let first = next(&mut ingress, "police's own ingress message").await?;
    assert_eq!(first.subject.as_str(), "liaison.ingress.police.envelope");
    assert_eq!(&first.payload[..], b"own");

    // It may read its own inbox, and nothing else. Its message after the
    // subscriptions says the server has them.
    let own_inbox = format!("{}.x", subjects::inbox_prefix("police"));
    let mut own = police.subscribe(own_inbox.clone()).await?;
    let mut other = police.subscribe("liaison.ingress.police.>").await?;
    police
        .publish("liaison.ingress.police.subscribed", "".into())
        .await?;
    let subscribed = next(&mut ingress, "police's message after subscribing").await?;
    assert_eq!(
        subscribed.subject.as_str(),
        "liaison.ingress.police.subscribed"
    );
    operator
        .publish("liaison.ingress.police.echo", "not for police".into())
        .await?;
    operator.publish(own_inbox, "for police".into()).await?;
    let mine = next(&mut own, "police's inbox message").await?;
    assert_eq!(&mine.payload[..], b"for police");
    // Sent before, by the same connection: had the subscription been
    // allowed, its message would already be here.
    assert!(
        other.next().now_or_never().is_none(),
        "police read a subject outside its permissions"
    );

    // A seed file that is not there is named; a wrong seed is refused.
    let missing = dir.path().join("missing.nk");
    let error = error_text(liaison_client::connect::connect(
        &police_id,
        &NatsOptions::with_auth(url.clone(), NatsAuth::NKeySeedFile(missing.clone())),
    ))
    .await;
    assert!(
        error.contains("NKey seed file") && error.contains(&missing.display().to_string()),
        "{error}"
    );
    let stranger = secret_file(dir.path(), "stranger.nk", &KeyPair::new_user().seed()?)?;
    let error = error_text(liaison_client::connect::connect(
        &police_id,
        &NatsOptions::with_auth(url.clone(), NatsAuth::NKeySeedFile(stranger)),
    ))
    .await;
    assert!(error.contains("authorization violation"), "{error}");
    Ok(())
}

/// A NATS JWT (`header.claims.signature`, base64url), signed by `issuer`.
fn jwt(issuer: &KeyPair, claims: &serde_json::Value) -> Result<String> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Claims issued by `issuer` about `subject`, valid from now (until `exp`).
fn claims(
    issuer: &KeyPair,
    subject: &str,
    name: &str,
    nats: serde_json::Value,
    exp: Option<i64>,
) -> Result<serde_json::Value> {
    use sha2::Digest as _;
    let iat = i64::try_from(liaison_core::time::unix_now())?;
    let mut claims = json!({
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    if let Some(exp) = exp {
        claims["exp"] = json!(exp);
    }
    let jti = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&claims)?)).to_uppercase();
    claims["jti"] = json!(jti);
    Ok(claims)
}

fn creds(user_jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[tokio::test]
async fn a_creds_file_connects_in_operator_mode_and_a_tampered_or_expired_one_is_refused()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let user = KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &claims(
            &operator,
            &operator.public_key(),
            "liaison-test",
            json!({"type": "operator", "version": 2}),
            None,
        )?,
    )?;
    let account_jwt = jwt(
        &operator,
        &claims(
            &operator,
            &account.public_key(),
            "partnership",
            json!({
                "type": "account",
                "version": 2,
                "limits": {
                    "subs": -1, "data": -1, "payload": -1, "imports": -1,
                    "exports": -1, "wildcards": true, "conn": -1, "leaf": -1
                },
            }),
            None,
        )?,
    )?;
    let user_nats = json!({
        "type": "user",
        "version": 2,
        "pub": {"allow": ["liaison.ingress.police.>"]},
        "sub": {"allow": ["liaison.ingress.police.>", "_INBOX_police.>"]},
        "subs": -1, "data": -1, "payload": -1,
    });
    let user_claims = claims(
        &account,
        &user.public_key(),
        "police",
        user_nats.clone(),
        None,
    )?;
    let user_jwt = jwt(&account, &user_claims)?;
    let seed = user.seed()?;
    let operator_file = dir.path().join("operator.jwt");
    std::fs::write(&operator_file, &operator_jwt)?;
    let (_server, url) = start_raw(
        dir.path(),
        &format!(
            "operator: {:?}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {:?}\n}}\n",
            operator_file.display().to_string(),
            account.public_key(),
            account_jwt,
        ),
    )?;
    let police_id = AgencyId::parse("police")?;
    let with_creds = |path: PathBuf| NatsOptions::with_auth(url.clone(), NatsAuth::CredsFile(path));

    // A good credentials file connects, publishes and receives within its permissions.
    let good = secret_file(dir.path(), "police.creds", &creds(&user_jwt, &seed))?;
    let police = liaison_client::connect::connect(&police_id, &with_creds(good)).await?;
    let mut sub = police.subscribe("liaison.ingress.police.>").await?;
    police.flush().await?;
    police
        .publish("liaison.ingress.police.hello", "signed in by JWT".into())
        .await?;
    police.flush().await?;
    let message = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await?
        .context("subscription closed")?;
    assert_eq!(&message.payload[..], b"signed in by JWT");

    // Tampered: wider permissions claimed under the account's old signature.
    let mut widened = user_claims.clone();
    widened["nats"]["pub"]["allow"] = json!([">"]);
    let parts: Vec<&str> = user_jwt.split('.').collect();
    ensure!(parts.len() == 3, "{user_jwt}");
    let tampered_jwt = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened)?),
        parts[2]
    );
    let tampered = secret_file(dir.path(), "tampered.creds", &creds(&tampered_jwt, &seed))?;
    let error = error_text(liaison_client::connect::connect(
        &police_id,
        &with_creds(tampered.clone()),
    ))
    .await;
    assert!(
        error.contains(&tampered.display().to_string())
            && error.contains("authorization violation")
            && error.contains("refused the user JWT"),
        "{error}"
    );

    // Expired: said before anything is sent.
    let now = i64::try_from(liaison_core::time::unix_now())?;
    let expired_jwt = jwt(
        &account,
        &claims(
            &account,
            &user.public_key(),
            "police",
            user_nats,
            Some(now - 60),
        )?,
    )?;
    let expired = secret_file(dir.path(), "expired.creds", &creds(&expired_jwt, &seed))?;
    let error = error_text(liaison_client::connect::connect(
        &police_id,
        &with_creds(expired.clone()),
    ))
    .await;
    assert!(
        error.contains(&expired.display().to_string()) && error.contains("expired"),
        "{error}"
    );

    // Not a credentials file at all.
    let junk = secret_file(dir.path(), "junk.creds", "not credentials")?;
    let error = error_text(liaison_client::connect::connect(
        &police_id,
        &with_creds(junk.clone()),
    ))
    .await;
    if !(error.contains("NATS credentials file") && error.contains(&junk.display().to_string())) {
        bail!("{error}");
    }
    Ok(())
}
