//! Typed configuration: defaults in code, an optional TOML file
//! (`deploy/config/liaison.toml`), then `LIAISON_<SECTION>_<KEY>` environment
//! variables. Unknown keys and wrong types fail at start with the key named.

use liaison_core::Secret;
use liaison_core::connect::TlsOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub nats: NatsConfig,
    pub gateway: GatewayConfig,
    pub streams: StreamsConfig,
    pub paths: PathsConfig,
    pub audit: AuditConfig,
    pub https: HttpsConfig,
    pub telemetry: TelemetryConfig,
    pub linkage: LinkageConfig,
    pub cases: CasesConfig,
    pub alerts: AlertsConfig,
    pub data: DataConfig,
}

/// Personal data at rest: its encryption and how long it is kept
/// (docs/decisions/0022-encryption-at-rest-and-crypto-erasure.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The key-encryption keys data keys are wrapped with (a file kept
    /// outside NATS; `liaison keys gen-kek` makes a key).
    pub kek_file: PathBuf,
    /// How long data shared under a clause that states no `@retention` is kept.
    pub default_retention_days: u64,
    /// How often the gateway destroys the data keys whose retention has
    /// ended (0: never).
    pub retention_sweep_secs: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            kek_file: PathBuf::from("deploy/keys/dev-kek.toml"),
            default_retention_days: 6 * 365,
            retention_sweep_secs: 60,
        }
    }
}

/// The cases service's timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasesConfig {
    /// A live case's review is due this many days after it opened or was
    /// last reviewed (risk is re-assessed week by week).
    pub review_every_days: u64,
    /// A closed case (a former subject) is reviewed this many days after
    /// closing, unless the closure names a review date.
    pub former_review_days: u64,
}

impl Default for CasesConfig {
    fn default() -> Self {
        Self {
            review_every_days: 7,
            former_review_days: 180,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Where the services connect.
    pub url: String,
    /// This process's NATS user and password (empty: from the `liaison up` session).
    pub user: String,
    pub password: Secret,
    /// JetStream `sync_interval` of a nats-server Liaison starts or configures:
    /// "always" flushes every write to disk before acknowledging it; empty
    /// keeps nats-server's default (every 2 minutes). See docs/durability.md.
    pub sync_interval: String,
    /// Refuse a NATS server that does not offer TLS (production: true).
    pub tls_required: bool,
    /// The CA (PEM) that signed the NATS servers' certificates (empty: the
    /// system's roots, if TLS is offered or required).
    pub tls_ca: PathBuf,
    /// This process's client certificate (PEM), where the servers verify
    /// clients (`verify: true`); with `tls_key`.
    pub tls_cert: PathBuf,
    /// The client certificate's private key (PEM); with `tls_cert`.
    pub tls_key: PathBuf,
}

impl NatsConfig {
    /// The TLS this configuration asks for (see [`liaison_core::connect::TlsOptions`]).
    pub fn tls(&self) -> TlsOptions {
        let set = |p: &PathBuf| (!p.as_os_str().is_empty()).then(|| p.clone());
        TlsOptions {
            required: self.tls_required,
            root_ca: set(&self.tls_ca),
            client_cert: set(&self.tls_cert).zip(set(&self.tls_key)),
        }
    }

    /// Refuses a client certificate without its key or a key without its
    /// certificate, naming the keys.
    fn check(&self) -> Result<(), String> {
        match (
            self.tls_cert.as_os_str().is_empty(),
            self.tls_key.as_os_str().is_empty(),
        ) {
            (false, true) => Err(format!(
                "nats.tls_cert = {:?} is set without nats.tls_key: give the client certificate's key too",
                self.tls_cert.display().to_string()
            )),
            (true, false) => Err(format!(
                "nats.tls_key = {:?} is set without nats.tls_cert: give the client certificate too",
                self.tls_key.display().to_string()
            )),
            _ => Ok(()),
        }
    }

    /// Checks that every TLS file named can be used, naming the key and the
    /// file of the first that cannot (a service calls this before connecting).
    pub fn check_tls_files(&self) -> Result<(), String> {
        use liaison_core::connect::{check_certificates, check_key};
        let named = |key: &str, path: &Path, e: liaison_core::connect::TlsFileError| {
            format!("{key} = {:?}: {e}", path.display().to_string())
        };
        let set = |p: &PathBuf| !p.as_os_str().is_empty();
        if set(&self.tls_ca) {
            check_certificates("root CA file", &self.tls_ca)
                .map_err(|e| named("nats.tls_ca", &self.tls_ca, e))?;
        }
        if set(&self.tls_cert) {
            check_certificates("client certificate", &self.tls_cert)
                .map_err(|e| named("nats.tls_cert", &self.tls_cert, e))?;
        }
        if set(&self.tls_key) {
            check_key(&self.tls_key).map_err(|e| named("nats.tls_key", &self.tls_key, e))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The `aud` claim agency tokens must carry.
    pub audience: String,
    /// Largest envelope accepted, checked before decoding.
    pub max_envelope_bytes: usize,
    /// Longest token lifetime (`exp - iat`) accepted.
    pub max_token_lifetime_secs: u64,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub clock_skew_secs: u64,
    /// Ingress messages handled at once by one gateway.
    pub concurrency: usize,
    /// How often the gateway looks for a changed policy directory (0: never).
    pub policy_reload_secs: u64,
    /// File keeping the refusal and policy records the store could not take
    /// yet, so that they outlive a gateway restart (empty: in memory only).
    pub kept_records: PathBuf,
    /// How often the gateway looks whether removed agencies' held copies
    /// are gone (DELIVERY's retention), to record it (0: never).
    pub departures_sweep_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// How long an envelope id is remembered for de-duplication.
    pub duplicate_window_secs: u64,
    /// How long undelivered copies wait in DELIVERY for an offline agency.
    pub delivery_max_age_days: u64,
    /// Stream replicas (1 on a laptop, 3 on a cluster).
    pub replicas: usize,
    /// How long a service has to acknowledge a message before it is redelivered.
    pub ack_wait_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// The agency registry (TOML).
    pub registry: PathBuf,
    /// Directory of Cedar schema and policies.
    pub policies: PathBuf,
    /// Who may change membership (suspend, resume), with their keys
    /// (TOML, like the auditors' registry). Absent: nobody may.
    pub operators: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Names the ledger in its checkpoints, e.g. `liaison.example/ledger`.
    pub origin: String,
    /// The audit service's Ed25519 checkpoint signing key (PKCS#8 PEM).
    pub checkpoint_key: PathBuf,
    /// The verifier key auditors check checkpoints with (`name+id+key`).
    pub verifier_key: String,
    /// Sign a checkpoint after this many new records ...
    pub checkpoint_every: u64,
    /// ... or this many seconds after the last one, if records were added.
    pub checkpoint_interval_secs: u64,
    /// The auditors' registry: who may consult the ledger, with their keys.
    pub auditors: PathBuf,
    /// Witnesses outside the partnership asked to cosign each checkpoint
    /// (C2SP tlog-witness; docs/decisions/0023-witnesses.md).
    pub witnesses: Vec<WitnessConfig>,
    /// How many of them must have cosigned for `liaison audit verify` to
    /// call the ledger witnessed (0: none required).
    pub witness_quorum: usize,
}

/// One witness: where it listens and its verifier key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its tlog-witness submission prefix, e.g. `http://witness.example:7380`.
    pub url: String,
    /// Its cosignature verifier key (`NAME+ID+KEY`, from `liaison witness init`).
    pub key: String,
}

/// The gateway's HTTPS door, for agencies that do not speak NATS. Off unless
/// `listen` is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpsConfig {
    /// Address to listen on, e.g. `127.0.0.1:8443` (empty: no HTTPS door).
    pub listen: String,
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates are verified against
    /// (empty: client certificates are not asked for).
    pub client_ca: PathBuf,
    /// Refuse connections without a client certificate signed by `client_ca`.
    pub client_cert_required: bool,
    /// Largest request body read (0: `gateway.max_envelope_bytes`). Envelopes
    /// are also held to `gateway.max_envelope_bytes`, whatever their encoding.
    pub max_body_bytes: usize,
}

/// The plain-HTTP operations listener (`/metrics`, `/healthz`, `/readyz`).
/// Off unless `listen` is set; keep it on loopback or a private network: it
/// has no authentication. And where spans are exported (OTLP), off unless
/// `otlp_endpoint` is set (docs/decisions/0009-tracing.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Address to listen on, e.g. `127.0.0.1:9464` (empty: off).
    pub listen: String,
    /// OTLP/HTTP (protobuf) collector spans are exported to, e.g.
    /// `http://127.0.0.1:4318` (`/v1/traces` is added when no path is
    /// given; empty: no export).
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans (empty: the process's name,
    /// e.g. `liaison-gateway`, or `liaison` for `liaison up`).
    pub service_name: String,
}

/// The linkage service: how referrals are matched against the subject
/// index, and the grounds its events are raised under.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkageConfig {
    /// Two agencies referring the same token within this many days is a duplicate.
    pub duplicate_window_days: u64,
    /// A case closed without a review date is reviewed this many days after closing.
    pub review_horizon_days: u64,
    /// Purpose of re-engagement and duplicate-subject events (a vocabulary code).
    pub purpose: String,
    /// Legal basis of those events (a vocabulary code).
    pub legal_basis: String,
}

impl Default for LinkageConfig {
    fn default() -> Self {
        Self {
            duplicate_window_days: 30,
            review_horizon_days: 365,
            purpose: "counter-terrorism".into(),
            legal_basis: "DPA-2018-s35".into(),
        }
    }
}

/// The alerts service: when an alert that business partners have not all
/// acknowledged is escalated (docs/decisions/0012-alerts.md). The n-th
/// escalation is due n periods after the alert was accepted, up to
/// `max_escalations`; the period depends on the alert's threat level.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Escalation period of a CRITICAL alert (an attack is expected imminently).
    pub escalate_critical_secs: u64,
    /// ... of a SEVERE alert (an attack is highly likely).
    pub escalate_severe_secs: u64,
    /// ... of a SUBSTANTIAL alert.
    pub escalate_substantial_secs: u64,
    /// ... of a MODERATE alert.
    pub escalate_moderate_secs: u64,
    /// ... of a LOW alert, or one without a threat level.
    pub escalate_low_secs: u64,
    /// How many times an alert is escalated at most (0: never).
    pub max_escalations: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            escalate_critical_secs: 15 * 60,
            escalate_severe_secs: 30 * 60,
            escalate_substantial_secs: 2 * 3600,
            escalate_moderate_secs: 8 * 3600,
            escalate_low_secs: 24 * 3600,
            max_escalations: 3,
        }
    }
}

impl TelemetryConfig {
    /// Whether the listener is configured to open.
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// Whether spans are to be exported.
    pub fn exports(&self) -> bool {
        !self.otlp_endpoint.trim().is_empty()
    }
}

impl HttpsConfig {
    /// Whether the door is configured to open.
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// The body limit in force, given the gateway's envelope limit.
    pub fn body_limit(&self, gateway: &GatewayConfig) -> usize {
        if self.max_body_bytes == 0 {
            gateway.max_envelope_bytes
        } else {
            self.max_body_bytes
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            origin: "liaison.example/ledger".into(),
            checkpoint_key: "deploy/audit/dev-checkpoint-key.pem".into(),
            verifier_key: String::new(),
            checkpoint_every: 1000,
            checkpoint_interval_secs: 5,
            auditors: "deploy/audit/auditors.toml".into(),
            witnesses: Vec::new(),
            witness_quorum: 0,
        }
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            user: String::new(),
            password: Secret::default(),
            sync_interval: String::new(),
            tls_required: false,
            tls_ca: PathBuf::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            audience: "liaison-gateway".into(),
            max_envelope_bytes: 256 * 1024,
            max_token_lifetime_secs: 600,
            clock_skew_secs: 30,
            concurrency: 64,
            policy_reload_secs: 2,
            kept_records: PathBuf::new(),
            departures_sweep_secs: 600,
        }
    }
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            duplicate_window_secs: 24 * 3600,
            delivery_max_age_days: 30,
            replicas: 1,
            ack_wait_secs: 30,
        }
    }
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            registry: "deploy/agencies/registry.toml".into(),
            policies: "deploy/policies".into(),
            operators: "deploy/operators/operators.toml".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid configuration ({origin}): {reason}")]
    Invalid { origin: String, reason: String },
}

impl Config {
    /// Loads defaults, then `file` if given, then `LIAISON_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?,
            None => String::new(),
        };
        let origin = file.map_or("defaults".to_owned(), |p| p.display().to_string());
        Self::from_sources(&text, &origin, std::env::vars())
    }

    /// Builds a config from TOML text and `(name, value)` environment pairs.
    pub fn from_sources(
        toml_text: &str,
        origin: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let invalid = |origin: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        let mut table: toml::Table =
            toml::from_str(toml_text).map_err(|e| invalid(origin, e.to_string()))?;
        // Which keys exist, from the defaults: other LIAISON_* variables
        // (LIAISON_HOME, LIAISON_NATS_SERVER) are not configuration keys.
        let known =
            toml::Table::try_from(Config::default()).map_err(|e| invalid(origin, e.to_string()))?;
        let mut from_env = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("LIAISON_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            for (section, keys) in &known {
                let Some(key) = rest.strip_prefix(&format!("{section}_")) else {
                    continue;
                };
                let Some(keys) = keys.as_table() else {
                    continue;
                };
                if let Some(default) = keys.get(key) {
                    let value = env_value(default, &value).map_err(|wanted| {
                        invalid(origin, format!("{name}: {section}.{key} must be {wanted}"))
                    })?;
                    let entry = table
                        .entry(section.clone())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let Some(t) = entry.as_table_mut() {
                        t.insert(key.to_owned(), value);
                    }
                    from_env.push(name.clone());
                }
            }
        }
        let origin = if from_env.is_empty() {
            origin.to_owned()
        } else {
            format!("{origin} and {}", from_env.join(", "))
        };
        let config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| invalid(&origin, e.to_string()))?;
        config.streams.check().map_err(|e| invalid(&origin, e))?;
        config.nats.check().map_err(|e| invalid(&origin, e))?;
        Ok(config)
    }
}

impl StreamsConfig {
    /// Most replicas JetStream keeps of a stream.
    pub const MAX_REPLICAS: usize = 5;

    /// Refuses values JetStream would refuse later, naming the key.
    fn check(&self) -> Result<(), String> {
        if !(1..=Self::MAX_REPLICAS).contains(&self.replicas) {
            return Err(format!(
                "streams.replicas = {}: must be 1 (one nats-server) to {} (3 on a 3-node cluster)",
                self.replicas,
                Self::MAX_REPLICAS
            ));
        }
        Ok(())
    }
}

/// An environment variable's value as the type of the key it sets (the
/// type of the key's default): text stays text whatever it looks like (an
/// all-digit password is a password), numbers and booleans must parse, and
/// lists are written as in TOML (`["a", "b"]`). The error says what was
/// wanted, never the value (it may be a secret).
fn env_value(default: &toml::Value, value: &str) -> Result<toml::Value, &'static str> {
    match default {
        toml::Value::String(_) => Ok(toml::Value::String(value.to_owned())),
        toml::Value::Integer(_) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| "a whole number"),
        toml::Value::Float(_) => value
            .trim()
            .parse::<f64>()
            .map(toml::Value::Float)
            .map_err(|_| "a number"),
        toml::Value::Boolean(_) => value
            .trim()
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|_| "true or false"),
        toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Datetime(_) => {
            let parsed: toml::Table = toml::from_str(&format!("value = {value}"))
                .map_err(|_| "written as in TOML (a list: [\"a\", \"b\"])")?;
            parsed
                .get("value")
                .filter(|v| v.same_type(default))
                .cloned()
                .ok_or("written as in TOML, of the key's type (a list: [\"a\", \"b\"])")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let config = Config::from_sources(
            "[gateway]\nmax_envelope_bytes = 1000\n",
            "test.toml",
            env(&[
                ("LIAISON_NATS_URL", "nats://10.0.0.1:4222"),
                ("LIAISON_HOME", "/x"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.gateway.max_envelope_bytes, 1000);
        assert_eq!(config.nats.url, "nats://10.0.0.1:4222");
        assert_eq!(config.gateway.clock_skew_secs, 30);
    }

    #[test]
    fn https_is_off_by_default_and_set_like_any_section() {
        let config =
            Config::from_sources("", "defaults", env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.https.enabled());
        assert_eq!(
            config.https.body_limit(&config.gateway),
            config.gateway.max_envelope_bytes
        );
        let config = Config::from_sources(
            "[https]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
            "f.toml",
            env(&[
                ("LIAISON_HTTPS_LISTEN", "127.0.0.1:8443"),
                ("LIAISON_HTTPS_CLIENT_CERT_REQUIRED", "true"),
                ("LIAISON_HTTPS_MAX_BODY_BYTES", "1000"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.https.enabled());
        assert_eq!(config.https.cert, PathBuf::from("c.pem"));
        assert!(config.https.client_cert_required);
        assert_eq!(config.https.body_limit(&config.gateway), 1000);
        let err = Config::from_sources("[https]\nport = 1\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn span_export_is_off_by_default_and_set_like_any_key() {
        let config =
            Config::from_sources("", "defaults", env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.telemetry.exports());
        let config = Config::from_sources(
            "[telemetry]\nservice_name = \"gw\"\n",
            "f.toml",
            env(&[("LIAISON_TELEMETRY_OTLP_ENDPOINT", "http://127.0.0.1:4318")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.telemetry.exports());
        assert_eq!(config.telemetry.otlp_endpoint, "http://127.0.0.1:4318");
        assert_eq!(config.telemetry.service_name, "gw");
        let err = Config::from_sources("[telemetry]\notlp = \"x\"\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("otlp"), "{err}");
    }

    #[test]
    fn linkage_has_defaults_and_is_set_like_any_section() {
        let config =
            Config::from_sources("", "defaults", env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.linkage.duplicate_window_days, 30);
        let config = Config::from_sources(
            "[linkage]\nreview_horizon_days = 730\n",
            "f.toml",
            env(&[("LIAISON_LINKAGE_DUPLICATE_WINDOW_DAYS", "7")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.linkage.duplicate_window_days, 7);
        assert_eq!(config.linkage.review_horizon_days, 730);
        let err = Config::from_sources("[linkage]\nwindow = 1\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("window"), "{err}");
    }

    #[test]
    fn alert_escalation_times_are_set_like_any_section() {
        let config = Config::from_sources(
            "[alerts]\nescalate_critical_secs = 60\n",
            "f.toml",
            env(&[("LIAISON_ALERTS_MAX_ESCALATIONS", "1")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.alerts.escalate_critical_secs, 60);
        assert_eq!(config.alerts.escalate_severe_secs, 30 * 60);
        assert_eq!(config.alerts.max_escalations, 1);
        let err = Config::from_sources("[alerts]\nescalate_after = 1\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("escalate_after"), "{err}");
    }

    #[test]
    fn nats_tls_is_set_like_any_key_and_half_a_client_certificate_is_refused() {
        let config =
            Config::from_sources("", "defaults", env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.nats.tls(), TlsOptions::default());
        let config = Config::from_sources(
            "[nats]\ntls_required = true\ntls_ca = \"/etc/nats-tls/ca.pem\"\n",
            "f.toml",
            env(&[
                ("LIAISON_NATS_TLS_CERT", "/run/secrets/c.pem"),
                ("LIAISON_NATS_TLS_KEY", "/run/secrets/k.pem"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.nats.tls(),
            TlsOptions::required("/etc/nats-tls/ca.pem")
                .with_client_cert("/run/secrets/c.pem", "/run/secrets/k.pem")
        );
        let err = Config::from_sources("[nats]\ntls_cert = \"c.pem\"\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("f.toml") && err.contains("nats.tls_cert") && err.contains("nats.tls_key"),
            "{err}"
        );
        let config = Config::from_sources(
            "[nats]\ntls_ca = \"/nonexistent/ca.pem\"\n",
            "f.toml",
            env(&[]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let err = config.nats.check_tls_files().err().unwrap_or_default();
        assert!(
            err.contains("nats.tls_ca") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn replicas_out_of_range_are_refused_by_key() {
        let config = Config::from_sources("[streams]\nreplicas = 3\n", "f.toml", env(&[]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.streams.replicas, 3);
        for bad in ["0", "7"] {
            let err = Config::from_sources("", "f.toml", env(&[("LIAISON_STREAMS_REPLICAS", bad)]))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("streams.replicas") && err.contains("LIAISON_STREAMS_REPLICAS"),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_are_named() {
        let err = Config::from_sources("[gateway]\nmax_envelope = 1\n", "f.toml", env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("max_envelope") && err.contains("f.toml"),
            "{err}"
        );
        let err = Config::from_sources(
            "",
            "f.toml",
            env(&[("LIAISON_GATEWAY_MAX_ENVELOPE_BYTES", "big")]),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("LIAISON_GATEWAY_MAX_ENVELOPE_BYTES"), "{err}");
    }

    #[test]
    fn env_values_take_the_type_of_the_key_they_set() {
        // Text stays text however it looks: an all-digit password, a user
        // called "true".
        let config = Config::from_sources(
            "",
            "f.toml",
            env(&[
                ("LIAISON_NATS_PASSWORD", "20261207"),
                ("LIAISON_NATS_USER", "true"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.nats.password.expose(), "20261207");
        assert_eq!(config.nats.user, "true");
        // A wrong type is named by variable, key and type, never echoed.
        let err = Config::from_sources(
            "",
            "f.toml",
            env(&[("LIAISON_HTTPS_CLIENT_CERT_REQUIRED", "s3cret-yes")]),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("LIAISON_HTTPS_CLIENT_CERT_REQUIRED")
                && err.contains("https.client_cert_required must be true or false"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        // And a configuration's Debug never shows the password.
        assert!(!format!("{config:?}").contains("20261207"));
    }
}
