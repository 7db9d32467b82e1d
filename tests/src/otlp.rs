//! A real OTLP receiver for the tests: OTLP/HTTP with protobuf bodies
//! (`POST /v1/traces`, as collectors serve it on port 4318), on a free
//! loopback port, decoding what the exporter sends with the OpenTelemetry
//! project's own message types (`opentelemetry-proto`) and keeping every
//! span it received, flattened, for tests to look at.
//!
//! It runs on a thread and runtime of its own, so one receiver can serve
//! every test of a binary (a process has one span exporter) whichever test's
//! runtime ends first.

use anyhow::{Context as _, Result, anyhow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service: String,
    pub name: String,
    /// Lower-case hex, as in a `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// OTLP span kind (2 server, 3 client, 4 producer, 5 consumer).
    pub kind: i32,
    /// Every attribute, its value as text.
    pub attributes: Vec<(String, String)>,
    /// The span's `trace_state`, as exported.
    pub trace_state: String,
}

impl ReceivedSpan {
    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The receiver; it serves until the process ends.
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(n)) => n.to_string(),
        Some(any_value::Value::DoubleValue(x)) => x.to_string(),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(any_value::Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| text(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(any_value::Value::KvlistValue(l)) => pairs(&l.values)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        // A string-table index (profiles only): no text to show.
        Some(any_value::Value::StringValueStrindex(n)) => format!("strindex:{n}"),
        None => String::new(),
    }
}

fn pairs(values: &[KeyValue]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

/// Flattens one export request into spans.
fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| pairs(&r.attributes))
            .unwrap_or_default();
        let service = resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                    kind: span.kind,
                    attributes: pairs(&span.attributes),
                    trace_state: span.trace_state,
                });
            }
        }
    }
    out
}

async fn traces(
    State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf"));
    if !protobuf {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let received = flatten(request);
    match spans.lock() {
        Ok(mut spans) => spans.extend(received),
        Err(poisoned) => poisoned.into_inner().extend(received),
    }
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

impl Receiver {
    /// Starts a receiver on a free loopback port, on its own thread.
    pub fn start() -> Result<Self> {
        let spans: Arc<Mutex<Vec<ReceivedSpan>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(spans.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("OTLP receiver runtime")?;
        std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        let _ = axum::serve(listener, app).await;
                    }
                });
            })?;
        Ok(Self { addr, spans })
    }

    /// The endpoint to give the exporter (`telemetry.otlp_endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Result<Vec<ReceivedSpan>> {
        self.spans
            .lock()
            .map(|s| s.clone())
            .map_err(|_| anyhow!("receiver state poisoned"))
    }
}

/// Span export from this test process to one [`Receiver`], set up once per
/// process (the subscriber and its exporter are global).
pub struct Exporting {
    pub receiver: Receiver,
    telemetry: liaison_runtime::telemetry::Telemetry,
}

static EXPORTING: std::sync::OnceLock<std::result::Result<Exporting, String>> =
    std::sync::OnceLock::new();

/// Starts the receiver and exports this process's spans to it, as
/// `service.name` `liaison-tests` (first call; later calls share them).
pub fn exporting() -> Result<&'static Exporting> {
    EXPORTING
        .get_or_init(|| {
            let receiver = Receiver::start().map_err(|e| format!("{e:#}"))?;
            let wanted = liaison_runtime::config::TelemetryConfig {
                otlp_endpoint: receiver.endpoint(),
                service_name: "liaison-tests".into(),
                ..Default::default()
            };
            let telemetry = liaison_runtime::telemetry::init_with(
                &crate::test_log_filter().unwrap_or_else(|| "warn".into()),
                &wanted,
                "liaison",
            )
            .map_err(|e| e.to_string())?;
            if !telemetry.exporting() {
                return Err("another subscriber was installed first".into());
            }
            Ok(Exporting {
                receiver,
                telemetry,
            })
        })
        .as_ref()
        .map_err(|e| anyhow!("span export: {e}"))
}

impl Exporting {
    /// Sends the finished spans now, off the async threads.
    pub async fn flush(&'static self) -> Result<()> {
        tokio::task::spawn_blocking(move || self.telemetry.flush()).await?;
        Ok(())
    }
}
