//! NATS users and what each may publish and subscribe to. NATS is never open:
//! every service and every agency has its own user, limited to its own
//! subjects, so no client can bypass the gateway or read another agency's
//! deliveries. This module is the single statement of those permissions; the
//! nats-server configuration is rendered from it.

use crate::discovery::Member;
use liaison_core::ids::AgencyId;
use liaison_core::subjects::{self as s, inbox_prefix};
use liaison_core::system::Service;
use liaison_core::{Credentials, Secret};
use rand_core::{OsRng, RngCore};

/// User of the operator (administers streams; used by `liaison up` and operator commands).
pub const OPERATOR: &str = "operator";
/// A user that may read every stream, for tests and benchmarks looking
/// inside a system of their own ([`inspector`]); never in a deployment.
pub const INSPECTOR: &str = "inspector";
/// User of the gateway service.
pub const GATEWAY: &str = "svc-gateway";
/// User of the audit service.
pub const AUDIT: &str = "svc-audit";
/// User of the system account: the gateway closes a suspended or removed
/// agency's connections as it (`$SYS.REQ.SERVER.<id>.KICK`). Its password
/// is derived from the gateway's ([`system_password`]).
pub const SYSTEM: &str = "system";

/// The account Liaison's services, operators and agencies share (JetStream
/// enabled): agencies are placed in it by the auth callout.
pub const ACCOUNT: &str = "LIAISON";
/// nats-server's system account (server events, `KICK`); only [`SYSTEM`].
pub const SYSTEM_ACCOUNT: &str = "SYS";
/// The account that exists only so that the auth callout is asked about
/// connections that are not a service's (`allowed_accounts`), holding one
/// NKey user that makes nats-server send every client a nonce to sign. Its
/// seed was thrown away when it was made: nobody can log in as it.
pub const NONCE_ACCOUNT: &str = "AGENCIES";
/// That NKey user (public key; no seed exists).
pub const NONCE_NKEY: &str = "UDN6ANJU6VT7G3JQEINYD2LUN2NW4OHW27JXCY5WVUPREEVFNQJ6NLXN";

/// One NATS user with its permissions.
#[derive(Debug, Clone)]
pub struct NatsUser {
    pub credentials: Credentials,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// Subjects it may not subscribe to, though `subscribe` would allow them.
    pub deny_subscribe: Vec<String>,
    /// Subjects it may not publish to, though `publish` would allow them.
    pub deny_publish: Vec<String>,
    /// May reply to requests it received (the gateway answers senders).
    pub allow_responses: bool,
    /// Its account: [`ACCOUNT`], or [`SYSTEM_ACCOUNT`] for [`SYSTEM`].
    pub account: &'static str,
}

/// What an agency's NATS connection may do, as the auth callout grants it
/// (docs/decisions/0020-live-membership.md): send on its own ingress
/// subjects (envelopes, case queries, its inbox, all through the gateway)
/// and receive answers in its own inbox. No JetStream rights at all.
pub fn agency_permissions(agency: &AgencyId) -> (Vec<String>, Vec<String>) {
    (
        vec![s::ingress_of(agency)],
        vec![format!("{}.>", inbox_prefix(agency.as_str()))],
    )
}

/// What an auditor's NATS connection may do, as the auth callout grants it
/// (ADR 0021): ask the audit service (consultations, checkpoints, readers,
/// scoped records) and receive answers in their own inbox
/// (`_INBOX_auditor_ID`). Only an auditor whose scope is the whole ledger
/// may pull LEDGER, from the consumers a recorded consultation opens.
pub fn auditor_permissions(auditor: &AgencyId, whole_ledger: bool) -> (Vec<String>, Vec<String>) {
    let mut publish = vec![
        s::CHECKPOINT_REQUEST.to_owned(),
        s::CONSULT_REQUEST.to_owned(),
        s::READ_REQUEST.to_owned(),
        s::RECORDS_REQUEST.to_owned(),
    ];
    if whole_ledger {
        publish.extend(granted_reads(s::LEDGER_STREAM));
        publish.extend(read_stream(s::CHECKPOINTS_STREAM));
    }
    (
        publish,
        vec![format!(
            "{}.>",
            inbox_prefix(&crate::auditors::nats_name(auditor))
        )],
    )
}

fn derive(label: &str, gateway_password: &Secret) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(label.as_bytes());
    hash.update([0u8]);
    hash.update(gateway_password.expose().as_bytes());
    hash.finalize().into()
}

/// The key the gateway signs its auth callout answers with (an account
/// NKey), derived from the gateway's password: whoever holds that password
/// already answers for the gateway, so no further secret is handed out;
/// nats-server's configuration names the public half ([`callout_issuer`]).
pub fn callout_key(gateway_password: &Secret) -> Result<nkeys::KeyPair, String> {
    nkeys::KeyPair::new_from_raw(
        nkeys::KeyPairType::Account,
        derive("liaison auth callout issuer", gateway_password),
    )
    .map_err(|e| format!("the auth callout key: {e}"))
}

/// The public half of [`callout_key`] (`A...`).
pub fn callout_issuer(gateway_password: &Secret) -> Result<String, String> {
    callout_key(gateway_password).map(|k| k.public_key())
}

/// The [`SYSTEM`] user's password, derived from the gateway's.
pub fn system_password(gateway_password: &Secret) -> Secret {
    Secret::new(format!(
        "p{}",
        hex::encode(&derive("liaison system user", gateway_password)[..24])
    ))
}

/// A fresh random password: 24 random bytes in hex after a letter, so
/// that nats-server reads it as a string even from an environment variable
/// (where `1234e5` would be a number).
pub fn password() -> Secret {
    let mut bytes = [0u8; 24];
    OsRng.fill_bytes(&mut bytes);
    Secret::new(format!("p{}", hex::encode(bytes)))
}

fn user(
    name: &str,
    publish: Vec<String>,
    subscribe: Vec<String>,
    allow_responses: bool,
) -> NatsUser {
    let mut subscribe = subscribe;
    subscribe.push(format!("{}.>", inbox_prefix(name)));
    NatsUser {
        credentials: Credentials {
            user: name.to_owned(),
            password: password(),
        },
        publish,
        subscribe,
        deny_subscribe: vec![],
        deny_publish: vec![],
        allow_responses,
        account: ACCOUNT,
    }
}

/// JetStream API subjects to use one durable pull consumer.
fn consume(stream: &str, consumer: &str) -> Vec<String> {
    vec![
        format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
        format!("$JS.ACK.{stream}.{consumer}.>"),
    ]
}

/// JetStream API subjects to read a stream only through consumers someone
/// else created (an auditor's, granted by the audit service once the
/// consultation is recorded): no consumer of its own, no direct reads.
fn granted_reads(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.CONSUMER.INFO.{stream}.*"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
    ]
}

/// JetStream API subjects to read keys of a KV bucket (no watching, no writing).
fn read_key_value(bucket: &str) -> Vec<String> {
    vec![
        format!("$JS.API.STREAM.INFO.KV_{bucket}"),
        format!("$JS.API.STREAM.MSG.GET.KV_{bucket}"),
        format!("$JS.API.DIRECT.GET.KV_{bucket}.>"),
    ]
}

/// JetStream API subjects to read, watch and write a KV bucket.
fn write_key_value(bucket: &str) -> Vec<String> {
    [
        vec![format!("$KV.{bucket}.>")],
        read_stream(&format!("KV_{bucket}")),
    ]
    .concat()
}

/// JetStream API subjects to read a whole stream with ephemeral ordered consumers.
fn read_stream(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.STREAM.INFO.{stream}"),
        format!("$JS.API.STREAM.MSG.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.API.CONSUMER.CREATE.{stream}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.>"),
        format!("$JS.API.CONSUMER.DELETE.{stream}.>"),
        format!("$JS.API.CONSUMER.INFO.{stream}.>"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.>"),
        format!("$JS.FC.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
    ]
}

/// A Liaison service that reads EVENTS, keeps its state in its own KV
/// bucket, sends its own events through the gateway's internal door and
/// records its decisions. The cases service also answers case queries for
/// the gateway and keeps case participation (need to know) for it. Each
/// answers discovery under its own name ([`Member::subscriptions`]), so may
/// reply to requests it received.
fn service_user(service: Service, member: Member) -> NatsUser {
    let mut publish = [
        vec![s::internal(service), service.decisions()],
        read_facts(),
        write_key_value(service.bucket()),
    ]
    .concat();
    let mut subscribe = member.subscriptions();
    if service == Service::Cases {
        publish.extend(write_key_value(liaison_core::participation::BUCKET));
        subscribe.push(s::CASES_QUERY.to_owned());
    }
    if service == Service::Alerts {
        // Its business partners follow the live registry (read only).
        publish.extend(read_stream(&format!("KV_{}", crate::live_registry::BUCKET)));
    }
    let mut user = user(&service.user(), publish, subscribe, true);
    // Not the router's consumer, which delivers whole envelopes.
    user.deny_publish = vec![
        format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            s::EVENTS_STREAM,
            s::ROUTER_CONSUMER
        ),
        format!("$JS.ACK.{}.{}.>", s::EVENTS_STREAM, s::ROUTER_CONSUMER),
    ];
    user
}

/// JetStream API subjects to read EVENTS' commits in order (ADR 0021, 0024):
/// ordered consumers whose filter is [`s::COMMITS`], named so the filter is
/// in the request's subject (`CONSUMER.CREATE.EVENTS.<name>.<filter>`, which
/// nats-server checks against the request), and the stream's end. Of each
/// envelope a reader can open only its fact: the rest is sealed under keys
/// only the gateway can unwrap (ADR 0022).
fn read_facts() -> Vec<String> {
    let events = s::EVENTS_STREAM;
    vec![
        format!("$JS.API.STREAM.INFO.{events}"),
        format!("$JS.API.CONSUMER.CREATE.{events}.*.{}", s::COMMITS),
        format!("$JS.API.CONSUMER.DELETE.{events}.*"),
        format!("$JS.API.CONSUMER.INFO.{events}.*"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{events}.*"),
    ]
}

/// What the operator may publish: administering streams, consumers and KV
/// buckets, and asking Liaison's services (membership changes, inbox
/// backlogs, discovery) — never reading a message that carries what agencies
/// shared (docs/decisions/0021-a-rogue-agency-gets-nothing.md). Its only
/// subscription is its own inbox, so it receives nothing but answers.
///
/// - No `$JS.API.DIRECT.GET`, `STREAM.MSG.GET`, `CONSUMER.MSG.NEXT` or
///   `CONSUMER.CREATE` on EVENTS, DELIVERY, RECEIPTS or the services'
///   buckets; no snapshots, purges or deletions of any stream. Consumers
///   only by the names provisioning creates (pull consumers: a push one in
///   their place would deliver to the operator's inbox).
/// - Stream changes are allowed (provisioning creates and updates them) and
///   each is a ledger record (the audit service follows nats-server's
///   stream advisories), so a stream re-published to the operator shows.
/// - The ledger and its checkpoints, which hold no personal data, stay
///   readable for recovery (`liaison audit verify` when the audit service
///   will not start); `liaison audit restore` writes them as the audit
///   service, not as the operator.
/// - Keys it reads: the folds' cursors by name; the alerts board (ids and codes only), the live
///   registry and membership, whole.
fn operator_publish() -> Vec<String> {
    let mut publish: Vec<String> = [
        "$JS.API.INFO",
        "$JS.API.STREAM.CREATE.*",
        "$JS.API.STREAM.UPDATE.*",
        "$JS.API.STREAM.INFO.*",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.LIST",
        "$JS.API.CONSUMER.INFO.*.*",
        "$JS.API.CONSUMER.NAMES.*",
        "$JS.API.CONSUMER.LIST.*",
        s::ADMIN_ALL,
        s::CHECKPOINT_REQUEST,
        s::CONSULT_REQUEST,
        s::READ_REQUEST,
    ]
    .map(str::to_owned)
    .to_vec();
    publish.push(format!("{}.>", s::SERVICE_API));
    for (stream, consumer) in [
        (s::EVENTS_STREAM, s::ROUTER_CONSUMER),
        (s::DECISIONS_STREAM, s::LEDGER_WRITER_CONSUMER),
    ] {
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}"));
        publish.push(format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}.>"));
        publish.push(format!(
            "$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{consumer}"
        ));
    }
    publish.extend(read_stream(s::LEDGER_STREAM));
    publish.extend(read_stream(s::CHECKPOINTS_STREAM));
    for bucket in [
        crate::live_registry::BUCKET,
        crate::provision::MEMBERSHIP_BUCKET,
    ] {
        publish.extend(read_stream(&format!("KV_{bucket}")));
        publish.push(format!("$KV.{bucket}.>"));
    }
    publish.extend(read_stream(&format!("KV_{}", Service::Alerts.bucket())));
    for service in Service::ALL {
        let bucket = service.bucket();
        publish.push(format!(
            "$JS.API.DIRECT.GET.KV_{bucket}.$KV.{bucket}.{}",
            crate::fold::CURSOR_KEY
        ));
    }
    publish
}

/// The [`INSPECTOR`]: publishes and subscribes to anything in Liaison's
/// account but agencies' logins. Only a test's or a benchmark's own system
/// has it; [`plan`] never includes it.
pub fn inspector() -> NatsUser {
    let mut inspector = user(INSPECTOR, vec![">".into()], vec![">".into()], true);
    inspector.deny_subscribe = vec![s::AUTH_CALLOUT.to_owned()];
    inspector
}

/// Every static user of a Liaison deployment, with fresh random passwords
/// (the [`SYSTEM`] user's derived from the gateway's: [`derive_system`]).
/// Agencies are not among them: their NATS identity is their NKey in the
/// live registry, checked by the gateway's auth callout, which grants
/// [`agency_permissions`]; nothing here grows with the registry.
pub fn plan() -> Vec<NatsUser> {
    let mut users = vec![
        user(OPERATOR, operator_publish(), vec![], false),
        user(
            GATEWAY,
            [
                vec![
                    s::COMMITS.to_owned(),
                    s::DELIVERY_ALL.to_owned(),
                    s::decisions("gateway"),
                ],
                consume(s::EVENTS_STREAM, s::ROUTER_CONSUMER),
                // The commits since the duplicate window began, read at
                // start and whenever another gateway commits first (ADR 0024).
                read_facts(),
                read_key_value(liaison_core::participation::BUCKET),
                // Receipts: written before an envelope's copies go out, read
                // when a later envelope answers or corrects it.
                vec![format!("$KV.{}.>", crate::receipts::BUCKET)],
                read_key_value(crate::receipts::BUCKET),
                // Case queries, asked on an authenticated agency's behalf.
                vec![s::CASES_QUERY.to_owned()],
                // Agencies' inboxes, read for them (over NATS and HTTPS) by
                // subject with batched direct gets; the end of an inbox read
                // from the stream leader when numbering its next copy
                // (ADR 0019). No consumer per agency.
                vec![
                    format!("$JS.API.STREAM.INFO.{}", s::DELIVERY_STREAM),
                    format!("$JS.API.STREAM.MSG.GET.{}", s::DELIVERY_STREAM),
                    format!("$JS.API.DIRECT.GET.{}", s::DELIVERY_STREAM),
                ],
                vec![format!("$KV.{}.>", s::INBOX_BUCKET)],
                read_key_value(s::INBOX_BUCKET),
                // Counting the other gateway replicas (agencies' rates are
                // shared among them).
                vec![format!(
                    "{}.PING.{}",
                    s::SERVICE_API,
                    crate::discovery::Member::Gateway.service_name()
                )],
                // Token ids bound to their tokens, shared with the other
                // gateway replicas (replays).
                vec![format!("$KV.{}.>", crate::provision::JTI_BUCKET)],
                read_key_value(crate::provision::JTI_BUCKET),
                // Agencies suspended or resumed: written on an operator's
                // signed request, watched by every gateway.
                write_key_value(crate::provision::MEMBERSHIP_BUCKET),
                // The live registry: written on an operator's signed
                // request, followed by every gateway.
                write_key_value(crate::live_registry::BUCKET),
                // Data keys (wrapped): made when first needed, read to seal
                // and open what EVENTS and DELIVERY hold, destroyed by a
                // secure erase of their stored message (crypto-erasure).
                write_key_value(crate::seal::BUCKET),
                // Subjects restricted: written on an operator's signed
                // request, followed by every gateway.
                write_key_value(crate::provision::RESTRICTIONS_BUCKET),
                vec![format!(
                    "$JS.API.STREAM.MSG.DELETE.KV_{}",
                    crate::seal::BUCKET
                )],
            ]
            .concat(),
            [
                vec![
                    s::INGRESS_ALL.to_owned(),
                    s::INTERNAL_ALL.to_owned(),
                    s::ADMIN_ALL.to_owned(),
                    // Agencies' logins, answered from the live registry.
                    s::AUTH_CALLOUT.to_owned(),
                ],
                Member::Gateway.subscriptions(),
            ]
            .concat(),
            true,
        ),
        user(
            AUDIT,
            [
                vec![
                    s::LEDGER_ENTRIES.to_owned(),
                    s::LEDGER_CHECKPOINTS.to_owned(),
                    s::decisions("audit"),
                ],
                consume(s::DECISIONS_STREAM, s::LEDGER_WRITER_CONSUMER),
                read_stream(s::LEDGER_STREAM),
                read_stream(s::CHECKPOINTS_STREAM),
                // A changed stream's configuration (metadata, no messages),
                // recorded in the ledger.
                vec![
                    "$JS.API.STREAM.INFO.*".to_owned(),
                    "$JS.API.STREAM.LIST".to_owned(),
                ],
                // A restored ledger moves the new DECISIONS past every
                // sequence it names (`liaison audit restore`).
                vec![format!("$JS.API.STREAM.PURGE.{}", s::DECISIONS_STREAM)],
            ]
            .concat(),
            [
                vec![
                    s::CHECKPOINT_REQUEST.to_owned(),
                    s::CONSULT_REQUEST.to_owned(),
                    s::READ_REQUEST.to_owned(),
                    s::RECORDS_REQUEST.to_owned(),
                    // Streams created, changed or deleted.
                    "$JS.EVENT.ADVISORY.STREAM.*.*".to_owned(),
                ],
                Member::Audit.subscriptions(),
            ]
            .concat(),
            true,
        ),
    ];
    for (service, member) in [
        (Service::Cases, Member::Cases),
        (Service::Linkage, Member::Linkage),
        (Service::Alerts, Member::Alerts),
    ] {
        users.push(service_user(service, member));
    }
    let mut system = user(SYSTEM, vec!["$SYS.REQ.SERVER.>".into()], vec![], false);
    system.account = SYSTEM_ACCOUNT;
    users.push(system);
    derive_system(&mut users);
    users
}

/// Sets the [`SYSTEM`] user's password from the gateway's (after the
/// gateway's was set, e.g. kept from an earlier generation).
pub fn derive_system(users: &mut [NatsUser]) {
    let Some(gateway) = users
        .iter()
        .find(|u| u.credentials.user == GATEWAY)
        .map(|u| u.credentials.password.clone())
    else {
        return;
    };
    if let Some(system) = users.iter_mut().find(|u| u.credentials.user == SYSTEM) {
        system.credentials.password = system_password(&gateway);
    }
}

/// The `authorization { users = [...] }` block of a nats-server
/// configuration, passwords written in it (see [`crate::nats_conf`]).
pub fn render_authorization(users: &[NatsUser]) -> String {
    crate::nats_conf::authorization(users, crate::nats_conf::Passwords::Inline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agencies_are_limited_to_their_own_subjects_and_are_no_static_users() {
        let police = AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"));
        let (publish, subscribe) = agency_permissions(&police);
        assert_eq!(publish, vec!["liaison.ingress.police.>"]);
        assert_eq!(subscribe, vec!["_INBOX_police.>"]);
        let users = plan();
        let rendered = render_authorization(&users);
        assert!(!rendered.contains("police"), "{rendered}");
        // operator, gateway, audit, three services, system: auditors log in
        // as themselves, through the callout.
        assert_eq!(users.len(), 7);
        // The operator receives answers only: no agencies' logins, nothing stored.
        let operator = users
            .iter()
            .find(|u| u.credentials.user == OPERATOR)
            .unwrap_or_else(|| panic!("operator"));
        assert_eq!(operator.subscribe, vec!["_INBOX_operator.>"]);
        assert!(
            rendered.contains("auth_users: [\"svc-gateway\"]"),
            "{rendered}"
        );
        let gateway_password = users
            .iter()
            .find(|u| u.credentials.user == GATEWAY)
            .map(|u| u.credentials.password.clone())
            .unwrap_or_else(|| panic!("gateway"));
        let issuer = callout_issuer(&gateway_password).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            issuer.starts_with('A') && rendered.contains(&issuer),
            "{rendered}"
        );
        let system = users
            .iter()
            .find(|u| u.credentials.user == SYSTEM)
            .unwrap_or_else(|| panic!("system"));
        assert_eq!(system.account, SYSTEM_ACCOUNT);
        assert_eq!(
            system.credentials.password.expose(),
            system_password(&gateway_password).expose()
        );
        assert!(nkeys::KeyPair::from_public_key(NONCE_NKEY).is_ok());
        // No service may send on an agency's ingress or read deliveries.
        for service in Service::ALL {
            let svc = users
                .iter()
                .find(|u| u.credentials.user == service.user())
                .unwrap_or_else(|| panic!("{service:?} user"));
            assert!(
                svc.publish.iter().all(|p| !p.contains("ingress")
                    && !p.contains("DELIVERY")
                    && !p.contains("LEDGER")),
                "{:?}",
                svc.publish
            );
            assert!(svc.publish.contains(&s::internal(service)));
        }
    }

    #[test]
    fn the_operator_administers_the_stores_but_reads_no_message_agencies_shared() {
        let publish = operator_publish();
        assert!(!publish.iter().any(|p| p == ">" || p.ends_with(".API.>")));
        for stream in [
            s::EVENTS_STREAM.to_owned(),
            s::DELIVERY_STREAM.to_owned(),
            format!("KV_{}", crate::receipts::BUCKET),
            format!("KV_{}", Service::Cases.bucket()),
            format!("KV_{}", Service::Linkage.bucket()),
        ] {
            for read in [
                format!("$JS.API.DIRECT.GET.{stream}"),
                format!("$JS.API.STREAM.MSG.GET.{stream}"),
                format!("$JS.API.CONSUMER.CREATE.{stream}"),
                format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.x"),
                format!("$JS.API.STREAM.SNAPSHOT.{stream}"),
                format!("$JS.API.STREAM.PURGE.{stream}"),
                format!("$JS.API.STREAM.DELETE.{stream}"),
            ] {
                assert!(
                    !publish.iter().any(|p| matches(p, &read)),
                    "the operator may publish {read}"
                );
            }
        }
        // Only the folds' cursor keys of the services' buckets, by name.
        let cases = Service::Cases.bucket();
        assert!(publish.iter().any(|p| matches(
            p,
            &format!("$JS.API.DIRECT.GET.KV_{cases}.$KV.{cases}.meta.cursor")
        )));
        assert!(!publish.iter().any(|p| matches(
            p,
            &format!("$JS.API.DIRECT.GET.KV_{cases}.$KV.{cases}.case.C1")
        )));
        // It administers: streams, provisioning's consumers, operators' requests.
        for admin in [
            "$JS.API.STREAM.UPDATE.EVENTS".to_owned(),
            format!("$JS.API.CONSUMER.CREATE.EVENTS.{}", s::ROUTER_CONSUMER),
            s::ADMIN_INBOXES.to_owned(),
            s::ADMIN_AGENCIES.to_owned(),
        ] {
            assert!(publish.iter().any(|p| matches(p, &admin)), "{admin}");
        }
    }

    /// Whether NATS subject pattern `pattern` matches subject `subject`.
    fn matches(pattern: &str, subject: &str) -> bool {
        let p: Vec<&str> = pattern.split('.').collect();
        let t: Vec<&str> = subject.split('.').collect();
        for (i, token) in p.iter().enumerate() {
            match *token {
                ">" => return t.len() > i,
                "*" if i < t.len() => {}
                x if i < t.len() && x == t[i] => {}
                _ => return false,
            }
        }
        p.len() == t.len()
    }

    #[test]
    fn the_gateway_reads_inboxes_by_subject_with_rights_that_do_not_grow_with_the_registry() {
        let gateway = plan()
            .into_iter()
            .find(|u| u.credentials.user == GATEWAY)
            .unwrap_or_else(|| panic!("gateway user"));
        // On DELIVERY: publish copies, read by subject, find an inbox's end.
        // No stream administration, no consumers.
        let on_delivery: Vec<&String> = gateway
            .publish
            .iter()
            .filter(|p| p.contains("DELIVERY"))
            .collect();
        assert_eq!(
            on_delivery,
            vec![
                "$JS.API.STREAM.INFO.DELIVERY",
                "$JS.API.STREAM.MSG.GET.DELIVERY",
                "$JS.API.DIRECT.GET.DELIVERY",
            ],
            "{on_delivery:?}"
        );
        assert!(
            !gateway
                .publish
                .iter()
                .any(|p| p.contains("CONSUMER.CREATE.DELIVERY") || p.contains("$JS.ACK.DELIVERY"))
        );
        // Other stream APIs only to read its KV buckets, and EVENTS' end
        // (where its next commit must go: ADR 0024).
        assert!(
            gateway
                .publish
                .iter()
                .filter(|p| p.contains("STREAM.") && !p.ends_with(".DELIVERY"))
                .all(|p| p == "$JS.API.STREAM.INFO.EVENTS"
                    || p.ends_with(".KV_PARTICIPATION")
                    || p.ends_with(".KV_RECEIPTS")
                    || p.ends_with(".KV_INBOX")
                    || p.ends_with(".KV_JTI")
                    || p.ends_with(".KV_MEMBERSHIP")
                    || p.contains(".KV_MEMBERSHIP.")
                    || p.ends_with(".KV_REGISTRY")
                    || p.contains(".KV_REGISTRY.")
                    || p.ends_with(".KV_RESTRICTIONS")
                    || p.contains(".KV_RESTRICTIONS.")
                    || p.ends_with(".KV_KEYS")
                    || p.contains(".KV_KEYS.")),
            "{:?}",
            gateway.publish
        );
        assert_eq!(
            gateway.subscribe,
            vec![
                "liaison.ingress.>",
                "liaison.internal.>",
                "liaison.admin.*",
                "$SYS.REQ.USER.AUTH",
                "$SRV.*",
                "$SRV.*.liaison-gateway",
                "$SRV.*.liaison-gateway.*",
                "liaison.status.gateway",
                "_INBOX_svc-gateway.>"
            ]
        );
    }

    #[test]
    fn each_service_answers_discovery_under_its_own_name_only() {
        let users = plan();
        let of = |name: &str| {
            users
                .iter()
                .find(|u| u.credentials.user == name)
                .unwrap_or_else(|| panic!("{name} user"))
        };
        for (user, member) in [
            (GATEWAY.to_owned(), Member::Gateway),
            (AUDIT.to_owned(), Member::Audit),
            (Service::Cases.user(), Member::Cases),
            (Service::Linkage.user(), Member::Linkage),
            (Service::Alerts.user(), Member::Alerts),
        ] {
            let u = of(&user);
            let discovery: Vec<&String> = u
                .subscribe
                .iter()
                .filter(|s| s.starts_with("$SRV") || s.starts_with("liaison.status."))
                .collect();
            let name = member.service_name();
            assert_eq!(
                discovery,
                [
                    "$SRV.*".to_owned(),
                    format!("$SRV.*.{name}"),
                    format!("$SRV.*.{name}.*"),
                    format!("liaison.status.{}", member.name()),
                ]
                .iter()
                .collect::<Vec<_>>(),
                "{user}"
            );
            // Answers go to the asker's inbox: no publish right on $SRV,
            // but for the gateway's count of its own replicas.
            assert!(u.allow_responses, "{user}");
            let asks: Vec<&String> = u.publish.iter().filter(|p| p.starts_with("$SRV")).collect();
            if member == Member::Gateway {
                assert_eq!(asks, ["$SRV.PING.liaison-gateway"], "{user}");
            } else {
                assert!(asks.is_empty(), "{user}");
            }
        }
        // Neither agencies nor auditors are discoverable services.
        let dpo = AgencyId::parse("police-dpo").unwrap_or_else(|e| panic!("{e}"));
        for whole in [true, false] {
            let (publish, subscribe) = auditor_permissions(&dpo, whole);
            assert_eq!(subscribe, ["_INBOX_auditor_police-dpo.>"]);
            assert!(publish.iter().all(|p| !p.starts_with("$SRV")));
            // Only a whole-ledger auditor may pull LEDGER.
            assert_eq!(
                publish.iter().any(|p| p.contains(".LEDGER")),
                whole,
                "{publish:?}"
            );
        }
    }
}
