//! Logs and spans for every Liaison process, set up in one place.
//!
//! Logs are structured, to stderr; `RUST_LOG` chooses what is shown. Spans
//! are exported over OTLP/HTTP (protobuf) when `[telemetry] otlp_endpoint`
//! is set, and not at all otherwise. Only spans of Liaison's own crates are
//! exported, and only their names and declared fields (ids, kinds, codes,
//! counts): log events are never attached to spans, so nothing a log line
//! carries reaches the collector. Logs and spans carry agency, kind and
//! envelope ids, never personal data (docs/decisions/0009-tracing.md).

use crate::config::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::time::Duration;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// How often finished spans are sent.
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Spans kept waiting for export; more are dropped (and counted by the SDK).
const QUEUE: usize = 4096;

/// Why telemetry could not be set up: the key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.{key} {value:?}: {reason}")]
pub struct TelemetryError {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

/// The installed telemetry. Dropping it (or [`shutdown`](Self::shutdown))
/// sends the spans still waiting; keep it until the process ends.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the finished spans now (blocking until sent or failed).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "Spans not exported");
        }
    }

    /// Sends what is waiting and stops exporting.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown_with_timeout(EXPORT_TIMEOUT);
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The OTLP/HTTP traces URL of `endpoint`: `http://host:port` gets
/// `/v1/traces`; a URL with a path is used as it is.
pub fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let endpoint = endpoint.trim();
    let fail = |reason: &str| TelemetryError {
        key: "otlp_endpoint",
        value: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: axum::http::Uri = endpoint
        .parse()
        .map_err(|_| fail("not a URL (e.g. http://127.0.0.1:4318)"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(fail(
                "https is not supported: spans go over plain HTTP to a collector on loopback or a private network (http://...)",
            ));
        }
        _ => return Err(fail("must start with http:// (e.g. http://127.0.0.1:4318)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(fail("names no host"));
    }
    if uri.query().is_some() {
        return Err(fail("must not have a query"));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(match uri.path() {
        "" | "/" => format!("{base}/v1/traces"),
        _ => endpoint.to_owned(),
    })
}

fn provider(
    config: &TelemetryConfig,
    default_service: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let url = traces_url(&config.otlp_endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TelemetryError {
            key: "otlp_endpoint",
            value: url,
            reason: e.to_string(),
        })?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(EXPORT_EVERY)
                .with_max_queue_size(QUEUE)
                .build(),
        )
        .build();
    let service = match config.service_name.trim() {
        "" => default_service,
        name => name,
    };
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build())
}

/// Installs the global subscriber: logs to stderr (`RUST_LOG`, else
/// `default_filter`), and spans to `config.otlp_endpoint` when set, as
/// `service.name` `config.service_name` (else `default_service`). Once per
/// process: a later call changes nothing and exports nothing.
pub fn init_with(
    default_filter: &str,
    config: &TelemetryConfig,
    default_service: &str,
) -> Result<Telemetry, TelemetryError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter);
    let provider = if config.exports() {
        provider(config, default_service).map(Some)
    } else {
        Ok(None)
    };
    let spans = provider
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("liaison"))
                .with_location(false)
                .with_threads(false)
                // Liaison's own spans only: no events, no other crate's spans.
                .with_filter(filter_fn(|meta| {
                    meta.is_span()
                        && meta.target().starts_with("liaison")
                        && *meta.level() <= tracing::Level::INFO
                }))
        });
    // Logs are installed even when the endpoint is wrong, so the error is seen.
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok();
    Ok(Telemetry {
        provider: provider?.filter(|_| installed),
    })
}

/// Installs logging only (no span export), as [`init_with`] does.
pub fn init(default_filter: &str) {
    let _ = init_with(default_filter, &TelemetryConfig::default(), "liaison");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_traces_path_and_bad_ones_are_named() {
        let url = |e: &str| traces_url(e).map_err(|e| e.to_string());
        assert_eq!(
            url("http://127.0.0.1:4318").as_deref(),
            Ok("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            url(" http://collector:4318/ ").as_deref(),
            Ok("http://collector:4318/v1/traces")
        );
        assert_eq!(
            url("http://collector/otlp/v1/traces").as_deref(),
            Ok("http://collector/otlp/v1/traces")
        );
        for (bad, says) in [
            ("https://collector:4318", "https is not supported"),
            ("collector:4318", "http://"),
            ("ftp://collector", "http://"),
            ("http://", "URL"),
            ("http://c:4318/v1/traces?x=1", "query"),
            ("http://exa mple", "URL"),
        ] {
            let err = url(bad).err().unwrap_or_default();
            assert!(
                err.contains("telemetry.otlp_endpoint") && err.contains(says),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        let telemetry = init_with("warn", &TelemetryConfig::default(), "liaison")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!telemetry.exporting());
        telemetry.flush();
    }
}
