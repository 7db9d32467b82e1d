//! The agency client: what a partner agency's system does on the bus. It signs
//! short-lived tokens with the agency's own key (reusing one per author for
//! half its lifetime, so the gateway's verification cache serves it), sends the
//! envelope to the agency's ingress subject and waits for the gateway's
//! verdict, and reads the agency's durable inbox with explicit acknowledgement.

use anyhow::{Context as _, Result, anyhow};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::PullConsumer};
use bytes::Bytes;
use futures_util::StreamExt;
use liaison_kit::connect::connect;
use liaison_kit::time::unix_now;
use liaison_kit::tokens::Signer;
use liaison_kit::users::Credentials;
use liaison_kit::{AgencyId, subjects};
use liaison_proto::v1::{Delivery, Envelope, Verdict};
use prost::Message as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Lifetime of the tokens this client mints.
pub const TOKEN_LIFETIME_SECS: u64 = 120;
/// How long to wait for the gateway's verdict.
pub const VERDICT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected agency.
pub struct AgencyClient {
    agency: AgencyId,
    client: async_nats::Client,
    signer: Signer,
    tokens: Mutex<HashMap<String, (String, u64)>>,
    audience: String,
    verdict_timeout: Duration,
}

impl AgencyClient {
    /// Connects as `agency` with its NATS `credentials`, signing with `key_pem`.
    pub async fn connect(
        url: &str,
        credentials: &Credentials,
        agency: AgencyId,
        key_pem: &str,
        audience: &str,
    ) -> Result<Self> {
        let signer =
            Signer::from_pem(key_pem, None).map_err(|e| anyhow!("agency signing key: {e}"))?;
        let client = connect(url, credentials, &format!("agency-{agency}")).await?;
        Ok(Self {
            agency,
            client,
            signer,
            tokens: Mutex::new(HashMap::new()),
            audience: audience.to_owned(),
            verdict_timeout: VERDICT_TIMEOUT,
        })
    }

    /// Waits at most `timeout` for each verdict.
    pub fn with_verdict_timeout(mut self, timeout: Duration) -> Self {
        self.verdict_timeout = timeout;
        self
    }

    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// A token for `subject` (the person or system sending): a fresh one, or
    /// the last one minted for it while it has more than half its life left.
    pub fn token(&self, subject: &str) -> Result<String> {
        let now = unix_now();
        let mut tokens = self
            .tokens
            .lock()
            .map_err(|_| anyhow!("token cache poisoned"))?;
        if let Some((token, minted)) = tokens.get(subject)
            && now < minted + TOKEN_LIFETIME_SECS / 2
        {
            return Ok(token.clone());
        }
        let token = mint(&self.signer, self.agency.as_str(), subject, &self.audience)?;
        tokens.insert(subject.to_owned(), (token.clone(), now));
        Ok(token)
    }

    /// A token minted now, never reused (tests of the replay cache use it).
    pub fn fresh_token(&self, subject: &str) -> Result<String> {
        mint(&self.signer, self.agency.as_str(), subject, &self.audience)
    }

    /// Sends `envelope`, signed for its author, and returns the gateway's verdict.
    pub async fn send(&self, envelope: &Envelope) -> Result<Verdict> {
        let token = self.token(&envelope.author)?;
        self.send_raw(envelope.encode_to_vec().into(), Some(&token))
            .await
    }

    /// Sends raw bytes with an optional token (for tools and tests).
    pub async fn send_raw(&self, payload: Bytes, token: Option<&str>) -> Result<Verdict> {
        request(
            &self.client,
            subjects::ingress(&self.agency),
            payload,
            token,
            self.verdict_timeout,
        )
        .await
    }

    /// Sends `envelope`, retrying with the same id while the gateway is
    /// unreachable, unavailable or rate-limiting this agency, for up to
    /// `give_up_after`. Safe: the id is
    /// the idempotency key, so a copy the gateway already accepted is answered
    /// `DUPLICATE` and never delivered twice.
    pub async fn send_until_answered(
        &self,
        envelope: &Envelope,
        give_up_after: Duration,
    ) -> Result<Verdict> {
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(20);
        loop {
            let error = match self.send(envelope).await {
                Ok(v) if v.code == "unavailable" || v.code == "rate_limited" => {
                    anyhow!("gateway {}: {}", v.code, v.reason)
                }
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if started.elapsed() + backoff > give_up_after {
                return Err(error.context(format!(
                    "no verdict after {} s of retries",
                    give_up_after.as_secs()
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Takes up to `max` deliveries from this agency's inbox, waiting up to
    /// `wait` for the first, and acknowledges each after decoding it.
    pub async fn inbox(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let js = jetstream::new(self.client.clone());
        let consumer: PullConsumer = js
            .get_consumer_from_stream(
                subjects::delivery_consumer(&self.agency),
                subjects::DELIVERY_STREAM,
            )
            .await
            .context("this agency's delivery consumer")?;
        let mut batch = consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .context("fetching deliveries")?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow!("fetching deliveries: {e}"))?;
            let delivery = Delivery::decode(message.payload.as_ref())
                .context("a delivery that is not a liaison.v1.Delivery")?;
            message
                .double_ack()
                .await
                .map_err(|e| anyhow!("acknowledging a delivery: {e}"))?;
            out.push(delivery);
        }
        Ok(out)
    }
}

/// A short-lived token: `iss` the principal (agency or auditor), `sub` the
/// person or system acting for it, `aud` the service it is for.
pub fn mint(signer: &Signer, issuer: &str, subject: &str, audience: &str) -> Result<String> {
    signer
        .mint(issuer, subject, audience, unix_now(), TOKEN_LIFETIME_SECS)
        .map_err(|e| anyhow!("signing the token: {e}"))
}

/// Sends one ingress request on `subject` and decodes the verdict.
pub async fn request(
    client: &async_nats::Client,
    subject: String,
    payload: Bytes,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Verdict> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(subjects::TOKEN_HEADER, token);
    }
    let reply = tokio::time::timeout(
        timeout,
        client.request_with_headers(subject, headers, payload),
    )
    .await
    .map_err(|_| {
        anyhow!(
            "no verdict from the gateway within {} ms",
            timeout.as_millis()
        )
    })?
    .map_err(|e| anyhow!("gateway unreachable: {e}"))?;
    Verdict::decode(reply.payload.as_ref())
        .context("the gateway's reply is not a liaison.v1.Verdict")
}
