//! Admission control: a bounded number of requests in flight per service class, and past it
//! RESOURCE_EXHAUSTED at once (never a queue) with retry advice
//! ([`crate::status::overloaded`]).
//!
//! The classes ([`Lane`]): commands (CustomerApp, WorkerApp except WatchNotifications, Admin),
//! queries (Queries, Catalog), long-lived streams (WorkerApp.WatchNotifications and
//! persistent-subscription reads, limited by count) and the EventStoreDB protocol (every other
//! `event_store.client` call: reads, appends, subscriptions). Health, reflection and Meta have
//! their own lane without a limit, so probes are never starved by a flood of other calls.
//!
//! A request holds its class's permit until its response body has ended (a stream holds it
//! for its whole life), and marks its connection busy ([`crate::incoming::ConnInfo`]) for
//! the idle timeout. The layer also turns tonic's OUT_OF_RANGE for a request message over
//! the decoding limit into RESOURCE_EXHAUSTED with the limit, gRPC's convention
//! ([`crate::status::message_too_large`]), in trailers-only responses and in trailers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AdmissionLimits;
use crate::incoming::{Busy, ConnInfo};

/// A service class with its own in-flight limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Health, reflection and Meta: never limited.
    Control,
    /// CustomerApp, WorkerApp (except WatchNotifications) and Admin calls.
    Commands,
    /// Queries and Catalog calls.
    Queries,
    /// Long-lived streams: WatchNotifications, persistent-subscription reads.
    Streams,
    /// The other EventStoreDB-protocol calls.
    Protocol,
}

impl Lane {
    /// The class of the gRPC method at `path` (`/package.Service/Method`).
    pub fn of(path: &str) -> Lane {
        const CONTROL: [&str; 4] = [
            "/grpc.health.v1.Health/",
            "/grpc.reflection.v1.ServerReflection/",
            "/grpc.reflection.v1alpha.ServerReflection/",
            "/daojia.v1.Meta/",
        ];
        const STREAMS: [&str; 2] = [
            "/daojia.v1.WorkerApp/WatchNotifications",
            "/event_store.client.persistent_subscriptions.PersistentSubscriptions/Read",
        ];
        if CONTROL.iter().any(|p| path.starts_with(p)) {
            Lane::Control
        } else if STREAMS.contains(&path) {
            Lane::Streams
        } else if path.starts_with("/daojia.v1.Queries/") || path.starts_with("/daojia.v1.Catalog/")
        {
            Lane::Queries
        } else if path.starts_with("/event_store.client.") {
            Lane::Protocol
        } else {
            Lane::Commands
        }
    }

    /// Its name in statuses and logs.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Control => "control calls",
            Lane::Commands => "commands",
            Lane::Queries => "queries",
            Lane::Streams => "streams",
            Lane::Protocol => "EventStoreDB-protocol calls",
        }
    }

    /// How long a refused caller is advised to wait: a command or query slot frees in
    /// milliseconds, a stream slot only when a stream ends.
    pub fn retry_after(self) -> Duration {
        match self {
            Lane::Streams => Duration::from_secs(1),
            _ => Duration::from_millis(100),
        }
    }
}

/// One class's permits.
#[derive(Debug)]
struct Limit {
    limit: usize,
    permits: Arc<Semaphore>,
}

impl Limit {
    fn new(limit: usize) -> Limit {
        Limit {
            limit,
            permits: Arc::new(Semaphore::new(limit)),
        }
    }
}

#[derive(Debug)]
struct Limits {
    commands: Limit,
    queries: Limit,
    streams: Limit,
    protocol: Limit,
}

impl Limits {
    fn of(&self, lane: Lane) -> Option<&Limit> {
        match lane {
            Lane::Control => None,
            Lane::Commands => Some(&self.commands),
            Lane::Queries => Some(&self.queries),
            Lane::Streams => Some(&self.streams),
            Lane::Protocol => Some(&self.protocol),
        }
    }
}

/// The tower layer installing [`Admission`] around the router.
#[derive(Clone, Debug)]
pub struct AdmissionLayer {
    limits: Arc<Limits>,
}

impl AdmissionLayer {
    /// A layer enforcing `limits`.
    pub fn new(limits: AdmissionLimits) -> Self {
        AdmissionLayer {
            limits: Arc::new(Limits {
                commands: Limit::new(limits.commands),
                queries: Limit::new(limits.queries),
                streams: Limit::new(limits.streams),
                protocol: Limit::new(limits.protocol),
            }),
        }
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admission {
            inner,
            limits: self.limits.clone(),
        }
    }
}

/// The service made by [`AdmissionLayer`].
#[derive(Clone, Debug)]
pub struct Admission<S> {
    inner: S,
    limits: Arc<Limits>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Admission<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let lane = Lane::of(req.uri().path());
        let permit = match self.limits.of(lane) {
            None => None,
            Some(limit) => match limit.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::debug!(
                        path = req.uri().path(),
                        lane = lane.name(),
                        limit = limit.limit,
                        "request shed"
                    );
                    let status =
                        crate::status::overloaded(lane.name(), limit.limit, lane.retry_after());
                    return Box::pin(std::future::ready(Ok(status.into_http())));
                }
            },
        };
        let busy = req.extensions().get::<ConnInfo>().map(ConnInfo::busy);
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            let (mut parts, body) = response.into_parts();
            remap_too_large(&mut parts.headers);
            let body = Guarded {
                inner: body,
                _permit: permit,
                _busy: busy,
            };
            Ok(http::Response::from_parts(
                parts,
                tonic::body::Body::new(body),
            ))
        })
    }
}

/// Rewrites tonic's OUT_OF_RANGE for an oversized request message in `headers` (a
/// trailers-only response, or trailers) into RESOURCE_EXHAUSTED.
fn remap_too_large(headers: &mut http::HeaderMap) {
    if headers.get("grpc-status").map(http::HeaderValue::as_bytes) != Some(b"11") {
        return;
    }
    let Some(message) = headers.get("grpc-message").and_then(|m| m.to_str().ok()) else {
        return;
    };
    let message = percent_decode(message);
    if let Some(status) = crate::status::message_too_large(&message) {
        headers.remove("grpc-status");
        headers.remove("grpc-message");
        headers.remove("grpc-status-details-bin");
        // add_header only fails for a message that cannot be a header, which ours can.
        let _ = status.add_header(headers);
    }
}

/// gRPC's percent-decoding of `grpc-message`.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(v)) = text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response body holding its class's permit and its connection's busy mark until it ends;
/// it also remaps an oversized-request status in its trailers.
struct Guarded {
    inner: tonic::body::Body,
    _permit: Option<OwnedSemaphorePermit>,
    _busy: Option<Busy>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_trailers() {
                    Ok(mut trailers) => {
                        remap_too_large(&mut trailers);
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_fall_into_their_lanes() {
        assert_eq!(Lane::of("/grpc.health.v1.Health/Check"), Lane::Control);
        assert_eq!(Lane::of("/daojia.v1.Meta/ServerInfo"), Lane::Control);
        assert_eq!(
            Lane::of("/daojia.v1.WorkerApp/WatchNotifications"),
            Lane::Streams
        );
        assert_eq!(Lane::of("/daojia.v1.WorkerApp/TakeOffer"), Lane::Commands);
        assert_eq!(Lane::of("/daojia.v1.CustomerApp/PostOrder"), Lane::Commands);
        assert_eq!(Lane::of("/daojia.v1.Admin/SetClock"), Lane::Commands);
        assert_eq!(Lane::of("/daojia.v1.Queries/ListOrders"), Lane::Queries);
        assert_eq!(Lane::of("/daojia.v1.Catalog/ListServices"), Lane::Queries);
        assert_eq!(
            Lane::of("/event_store.client.streams.Streams/Read"),
            Lane::Protocol
        );
        assert_eq!(
            Lane::of("/event_store.client.persistent_subscriptions.PersistentSubscriptions/Read"),
            Lane::Streams
        );
    }

    #[test]
    fn an_oversized_request_status_becomes_resource_exhausted_and_others_are_kept() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", "11".parse().unwrap());
        headers.insert(
            "grpc-message",
            "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes"
                .parse()
                .unwrap(),
        );
        remap_too_large(&mut headers);
        assert_eq!(headers["grpc-status"], "8");
        let message = percent_decode(headers["grpc-message"].to_str().unwrap());
        assert!(message.contains("the limit is: 4 bytes"), "{message}");

        let mut other = http::HeaderMap::new();
        other.insert("grpc-status", "11".parse().unwrap());
        other.insert("grpc-message", "position out of range".parse().unwrap());
        remap_too_large(&mut other);
        assert_eq!(other["grpc-status"], "11");
    }
}
