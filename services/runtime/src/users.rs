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
/// User of the gateway service.
pub const GATEWAY: &str = "svc-gateway";
/// User of the audit service.
pub const AUDIT: &str = "svc-audit";
/// User of auditors: read-only access to the ledger.
pub const AUDITOR: &str = "auditor";

/// One NATS user with its permissions.
#[derive(Debug, Clone)]
pub struct NatsUser {
    pub credentials: Credentials,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// May reply to requests it received (the gateway answers senders).
    pub allow_responses: bool,
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
        allow_responses,
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
        read_stream(s::EVENTS_STREAM),
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
    user(&service.user(), publish, subscribe, true)
}

/// Every user of a Liaison deployment, with fresh random passwords.
pub fn plan(agencies: &[AgencyId]) -> Vec<NatsUser> {
    let mut users = vec![
        user(OPERATOR, vec![">".into()], vec![">".into()], true),
        user(
            GATEWAY,
            [
                vec![
                    s::EVENTS_ALL.to_owned(),
                    s::DELIVERY_ALL.to_owned(),
                    s::decisions("gateway"),
                ],
                consume(s::EVENTS_STREAM, s::ROUTER_CONSUMER),
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
            ]
            .concat(),
            [
                vec![
                    s::INGRESS_ALL.to_owned(),
                    s::INTERNAL_ALL.to_owned(),
                    s::ADMIN_AGENCIES.to_owned(),
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
            ]
            .concat(),
            [
                vec![
                    s::CHECKPOINT_REQUEST.to_owned(),
                    s::CONSULT_REQUEST.to_owned(),
                    s::READ_REQUEST.to_owned(),
                ],
                Member::Audit.subscriptions(),
            ]
            .concat(),
            true,
        ),
        user(
            AUDITOR,
            [
                vec![
                    s::CHECKPOINT_REQUEST.to_owned(),
                    s::CONSULT_REQUEST.to_owned(),
                    s::READ_REQUEST.to_owned(),
                ],
                granted_reads(s::LEDGER_STREAM),
                read_stream(s::CHECKPOINTS_STREAM),
            ]
            .concat(),
            vec![],
            false,
        ),
    ];
    for (service, member) in [
        (Service::Cases, Member::Cases),
        (Service::Linkage, Member::Linkage),
        (Service::Alerts, Member::Alerts),
    ] {
        users.push(service_user(service, member));
    }
    for agency in agencies {
        // Envelopes, case queries and its inbox, all through the gateway:
        // no JetStream rights at all.
        users.push(user(
            agency.as_str(),
            vec![s::ingress_of(agency)],
            vec![],
            false,
        ));
    }
    users
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
    fn agencies_are_limited_to_their_own_subjects() {
        let police = AgencyId::parse("police").unwrap_or_else(|e| panic!("{e}"));
        let users = plan(std::slice::from_ref(&police));
        let agency = users
            .iter()
            .find(|u| u.credentials.user == "police")
            .unwrap_or_else(|| panic!("police user"));
        assert_eq!(agency.publish, vec!["liaison.ingress.police.>"]);
        assert_eq!(agency.subscribe, vec!["_INBOX_police.>"]);
        assert!(!agency.allow_responses);
        let rendered = render_authorization(&users);
        assert!(rendered.contains("user: \"police\""));
        // operator, gateway, audit, auditor, three services, one agency.
        assert_eq!(users.len(), 8);
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
    fn the_gateway_reads_inboxes_by_subject_with_rights_that_do_not_grow_with_the_registry() {
        let plan_for = |names: &[&str]| {
            let ids: Vec<AgencyId> = names
                .iter()
                .map(|a| AgencyId::parse(a).unwrap_or_else(|e| panic!("{e}")))
                .collect();
            plan(&ids)
                .into_iter()
                .find(|u| u.credentials.user == GATEWAY)
                .unwrap_or_else(|| panic!("gateway user"))
        };
        let gateway = plan_for(&["police", "council"]);
        let many: Vec<String> = (0..500).map(|i| format!("school-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(plan_for(&many).publish, gateway.publish);
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
        // Other stream APIs only to read its KV buckets.
        assert!(
            gateway
                .publish
                .iter()
                .filter(|p| p.contains("STREAM.") && !p.ends_with(".DELIVERY"))
                .all(|p| p.ends_with(".KV_PARTICIPATION")
                    || p.ends_with(".KV_RECEIPTS")
                    || p.ends_with(".KV_INBOX")
                    || p.ends_with(".KV_JTI")
                    || p.ends_with(".KV_MEMBERSHIP")
                    || p.contains(".KV_MEMBERSHIP.")
                    || p.ends_with(".KV_REGISTRY")
                    || p.contains(".KV_REGISTRY.")),
            "{:?}",
            gateway.publish
        );
        assert_eq!(
            gateway.subscribe,
            vec![
                "liaison.ingress.>",
                "liaison.internal.>",
                "liaison.admin.agencies",
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
        let users = plan(&[]);
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
        assert!(of(AUDITOR).subscribe.iter().all(|s| !s.starts_with("$SRV")));
    }
}
