//! A hop of a trace: one `tracing` span of a Liaison service (or of the
//! agency client), joined to the W3C trace context it continues and the one
//! it hands on ([`crate::trace`]).
//!
//! With the `opentelemetry` feature, and when the process exports spans
//! (`liaison_runtime::telemetry` in the services), the span is an
//! OpenTelemetry span: its parent is the incoming context and what it hands
//! on is its own id. When it does not (the feature off, no exporter, or a
//! library whose host installed none), the incoming context is handed on
//! unchanged, so the sender's trace still reaches every recipient and the
//! ledger. It does not
//! name spans or choose their fields: callers do, with only ids, kinds, codes
//! and counts, never personal data.

use crate::trace::{TraceContext, TraceParent};
use tracing::Span;

/// A span and the trace context it continues.
#[derive(Debug, Clone)]
pub struct Hop {
    span: Span,
    /// The context this hop continues, if any.
    incoming: Option<TraceContext>,
    /// What is handed on when the span has no OpenTelemetry context: the
    /// incoming context (or, for a hop that starts traces, a new root).
    fallback: Option<TraceContext>,
}

impl Hop {
    /// A hop whose parent is not known yet: call [`adopt`](Self::adopt)
    /// before the span is entered or its context read.
    pub fn pending(span: Span) -> Self {
        Self {
            span,
            incoming: None,
            fallback: None,
        }
    }

    /// A hop continuing `incoming` (read from a message's or request's
    /// headers), or starting no trace of its own when there is none.
    pub fn continuing(span: Span, incoming: Option<TraceContext>) -> Self {
        let mut hop = Self::pending(span);
        if let Some(incoming) = incoming {
            hop.adopt(incoming);
        }
        hop
    }

    /// A hop that begins a share (the sending client): the child of
    /// `explicit` if given, else of the current span (as `tracing` nests
    /// them), else the root of a new trace. It always hands a context on.
    pub fn starting(span: Span, explicit: Option<TraceContext>) -> Self {
        match explicit {
            Some(explicit) => Self::continuing(span, Some(explicit)),
            None => {
                let mut hop = Self::pending(span);
                if !hop.has_span_context() {
                    hop.fallback = Some(TraceContext::new(TraceParent::new_root()));
                }
                hop
            }
        }
    }

    /// A hop under this one: `span` must have been made with
    /// `parent: self.span()`.
    pub fn child(&self, span: Span) -> Self {
        let context = self.context();
        Self {
            span,
            incoming: context.clone(),
            fallback: context,
        }
    }

    /// Makes `incoming` the parent, if the hop has none yet and its span has
    /// not started (entered, or its context read); `false` if it was too late
    /// or there was one already.
    pub fn adopt(&mut self, incoming: TraceContext) -> bool {
        if self.incoming.is_some() {
            return false;
        }
        let late = !otel::set_parent(&self.span, &incoming);
        self.incoming = Some(incoming.clone());
        self.fallback = Some(incoming);
        !late
    }

    /// The context this hop continues (its remote or given parent), if any.
    pub fn received(&self) -> Option<&TraceContext> {
        self.incoming.as_ref()
    }

    pub fn span(&self) -> &Span {
        &self.span
    }

    fn has_span_context(&self) -> bool {
        otel::span_parent(&self.span).is_some()
    }

    /// The context to hand the next hop: this span's, with the incoming
    /// trace state; or, with no span exported, the incoming context itself.
    pub fn context(&self) -> Option<TraceContext> {
        match otel::span_parent(&self.span) {
            Some(parent) => Some(TraceContext {
                parent,
                state: self.fallback.as_ref().and_then(|f| f.state.clone()),
            }),
            None => self.fallback.clone(),
        }
    }

    /// The trace id (32 hex digits) this hop belongs to, if any.
    pub fn trace_id(&self) -> Option<String> {
        self.context().map(|c| c.parent.trace_id_hex())
    }

    /// Puts [`context`](Self::context) into outgoing NATS headers.
    pub fn inject(&self, headers: &mut async_nats::HeaderMap) {
        if let Some(context) = self.context() {
            crate::trace::inject(headers, &context);
        }
    }
}

/// The trace context of the span the caller is in, if it has one.
pub fn current() -> Option<TraceContext> {
    Hop::pending(Span::current()).context()
}

/// The bridge to OpenTelemetry: a span's own context, and setting its
/// remote parent.
#[cfg(feature = "opentelemetry")]
mod otel {
    use crate::trace::{TraceContext, TraceParent};
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use tracing::Span;
    use tracing_opentelemetry::{OpenTelemetrySpanExt as _, SetParentError};

    /// Makes `incoming` the span's remote parent; `false` if the span had
    /// already started.
    pub(super) fn set_parent(span: &Span, incoming: &TraceContext) -> bool {
        let parent = &incoming.parent;
        let span_context = SpanContext::new(
            TraceId::from_bytes(parent.trace_id()),
            SpanId::from_bytes(parent.span_id()),
            TraceFlags::new(parent.flags() & TraceFlags::SAMPLED.to_u8()),
            true,
            // Vendor state travels in headers only: spans never carry it.
            TraceState::NONE,
        );
        let remote = opentelemetry::Context::new().with_remote_span_context(span_context);
        !matches!(span.set_parent(remote), Err(SetParentError::AlreadyStarted))
    }

    /// The span's own OpenTelemetry context, if it has one.
    pub(super) fn span_parent(span: &Span) -> Option<TraceParent> {
        let cx = span.context();
        let own = cx.span().span_context().clone();
        if !own.is_valid() {
            return None;
        }
        TraceParent::from_parts(
            own.trace_id().to_bytes(),
            own.span_id().to_bytes(),
            own.trace_flags().to_u8(),
        )
    }
}

/// Without OpenTelemetry, spans have no context of their own: the incoming
/// one is handed on.
#[cfg(not(feature = "opentelemetry"))]
mod otel {
    use crate::trace::{TraceContext, TraceParent};
    use tracing::Span;

    pub(super) fn set_parent(_span: &Span, _incoming: &TraceContext) -> bool {
        true
    }

    pub(super) fn span_parent(_span: &Span) -> Option<TraceParent> {
        None
    }
}
