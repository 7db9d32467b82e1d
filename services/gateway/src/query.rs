//! Case queries: an agency asks about the cases it takes part in
//! (`liaison.ingress.<agency>.query`, with its token, like an envelope). The
//! gateway authenticates it and applies its limits, asks the cases service on
//! its behalf (`liaison.cases.query`: the cases service answers only with
//! cases the agency participates in: need to know), and records the
//! consultation for the ledger before answering, a refused one (a case the
//! agency does not take part in) too. Refusals are recorded as at
//! ingress.

use crate::Shared;
use crate::ingress::{Rejected, refuse};
use crate::records;
use crate::refusal::Refusal;
use liaison_core::{AgencyId, subjects};
use liaison_proto::v1::{CaseQuery, CaseQueryAnswer, CasesQueryRequest};
use prost::Message as _;
use std::time::{Duration, Instant};

/// Largest query read (before decoding).
const MAX_QUERY_BYTES: usize = 4096;
/// Largest answer read from the cases service (before decoding).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// How long the cases service has to answer.
const CASES_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers one query: the encoded `CaseQueryAnswer`.
pub async fn answer(shared: &Shared, agency: &str, token: Option<&str>, payload: &[u8]) -> Vec<u8> {
    let answer = match ask(shared, agency, token, payload).await {
        Ok(answer) => answer,
        Err(rejected) => {
            let hop = liaison_core::hop::Hop::continuing(
                tracing::info_span!("gateway.query", otel.kind = "server"),
                None,
            );
            let verdict = refuse(shared, &hop, rejected).await;
            CaseQueryAnswer {
                code: verdict.code,
                reason: verdict.reason,
                ..Default::default()
            }
        }
    };
    answer.encode_to_vec()
}

async fn ask(
    shared: &Shared,
    agency: &str,
    token: Option<&str>,
    payload: &[u8],
) -> Result<CaseQueryAnswer, Rejected> {
    if payload.len() > MAX_QUERY_BYTES {
        return Err(Rejected::new(Refusal::TooLarge {
            size: payload.len(),
            limit: MAX_QUERY_BYTES,
        }));
    }
    let agency = AgencyId::parse(agency)
        .map_err(|e| Rejected::new(Refusal::InvalidAgencyId(e.to_string())))?;
    let refused = |refusal: Refusal| Rejected::new(refusal).by(&agency);
    shared.membership.check(&agency).map_err(refused)?;
    shared
        .limits
        .admit(&agency, payload.len(), Instant::now())
        .map_err(refused)?;
    let token = token.ok_or_else(|| refused(Refusal::MissingToken))?;
    let claims = shared.authenticate(&agency, token).await.map_err(refused)?;
    let query = CaseQuery::decode(payload).map_err(|e| {
        refused(Refusal::Malformed(format!(
            "not a liaison.v1.CaseQuery: {e}"
        )))
    })?;
    check(&query).map_err(refused)?;
    let request = CasesQueryRequest {
        agency: agency.to_string(),
        query: Some(query.clone()),
    };
    let reply = tokio::time::timeout(
        CASES_TIMEOUT,
        shared
            .client
            .request(subjects::CASES_QUERY, request.encode_to_vec().into()),
    )
    .await
    .map_err(|_| {
        refused(Refusal::Unavailable(
            "the cases service did not answer".into(),
        ))
    })?
    .map_err(|e| refused(Refusal::Unavailable(format!("cases service: {e}"))))?;
    if reply.payload.len() > MAX_ANSWER_BYTES {
        return Err(refused(Refusal::Unavailable(format!(
            "the cases service answered with {} bytes",
            reply.payload.len()
        ))));
    }
    let answer = CaseQueryAnswer::decode(reply.payload.as_ref()).map_err(|e| {
        refused(Refusal::Unavailable(format!(
            "the cases service's answer does not decode: {e}"
        )))
    })?;
    let id = uuid::Uuid::new_v4().to_string();
    let record = if answer.code.is_empty() {
        let tokens: Vec<String> = answer
            .cases
            .iter()
            .flat_map(|c| c.subject_tokens.iter().cloned())
            .collect();
        records::consultation(
            &id,
            agency.as_str(),
            &claims.sub,
            &query.case_id,
            answer.cases.len(),
            tokens,
        )
    } else {
        // Refused by the cases service (a case the agency does not take
        // part in): an attempt to consult, recorded like every refusal.
        records::consultation_refused(
            &id,
            agency.as_str(),
            &claims.sub,
            &query.case_id,
            &answer.code,
            &answer.reason,
        )
    };
    // No answer without its record (DPA 2018 s.62: consultation).
    shared
        .recorder
        .publish(&record)
        .await
        .map_err(|e| refused(Refusal::Unavailable(format!("consultation record: {e}"))))?;
    Ok(answer)
}

/// The query's fields, before they go anywhere.
fn check(query: &CaseQuery) -> Result<(), Refusal> {
    let invalid = |field: &'static str, reason: String| Refusal::InvalidField { field, reason };
    if !query.case_id.is_empty() {
        liaison_core::participation::validate_case_id(&query.case_id)
            .map_err(|e| invalid("query.case_id", e.reason.to_owned()))?;
    }
    if query.unit.len() > 64
        || !query
            .unit
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            "query.unit",
            "must be a unit code: at most 64 of a-z, 0-9 and '-'".into(),
        ));
    }
    if liaison_proto::v1::CaseStatus::try_from(query.status).is_err() {
        return Err(invalid(
            "query.status",
            format!("{} is not a case status", query.status),
        ));
    }
    if query.limit > 1000 {
        return Err(invalid("query.limit", "must be at most 1000".into()));
    }
    Ok(())
}
