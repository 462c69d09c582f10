//! The authentication layer: checks `authorization: Bearer <token>` (or, for EventStoreDB
//! clients, `Basic` credentials `ACTOR:TOKEN`) on every request except health checks and
//! reflection, and puts the [`Caller`] into the request's extensions.
//!
//! It wraps the whole router (one place for every service), so a service added later is
//! authenticated without doing anything. Services read the caller with
//! [`caller`]; whether the role may do what it asks is the
//! service's decision (PERMISSION_DENIED).
//!
//! With end-user binding configured ([`crate::end_user`]), a `customer-app` or `worker-app`
//! caller must also present a valid `x-daojia-user` assertion; its end user goes into the
//! [`Caller`], and the services check the ids and orders a call touches against it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;

use crate::auth::{Caller, Role, TokenTable};
use crate::end_user::{self, AssertionRefusal, EndUserPolicy};
use crate::status::ApiError;

/// gRPC path prefixes reachable without a token: load balancers and `grpcurl` need them before
/// they hold any credentials, and they reveal nothing about the data. The EventStoreDB
/// clients' connection handshake is public too, as in EventStoreDB: the Rust `kurrentdb`
/// client calls `ServerFeatures` without credentials on every (re)connect and fails to connect
/// if it is refused, and gossip (which node is the leader) comes before any other call.
pub const PUBLIC_PATH_PREFIXES: [&str; 5] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/event_store.client.server_features.ServerFeatures/",
    "/event_store.client.gossip.Gossip/",
];

/// How requests are authenticated.
#[derive(Debug)]
pub enum AuthPolicy {
    /// `--insecure`: no check; every request is [`Caller::insecure`].
    Insecure,
    /// A valid bearer token from the table is required.
    Tokens(TokenTable),
}

/// The tower layer installing [`Authenticate`] around the router.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    policy: Arc<AuthPolicy>,
    end_users: Option<Arc<EndUserPolicy>>,
}

impl AuthLayer {
    /// A layer enforcing `policy`.
    pub fn new(policy: AuthPolicy) -> Self {
        AuthLayer {
            policy: Arc::new(policy),
            end_users: None,
        }
    }

    /// Also requires app-role callers to present an end-user assertion verified by `end_users`.
    pub fn with_end_users(mut self, end_users: Option<EndUserPolicy>) -> Self {
        self.end_users = end_users.map(Arc::new);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            policy: self.policy.clone(),
            end_users: self.end_users.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct Authenticate<S> {
    inner: S,
    policy: Arc<AuthPolicy>,
    end_users: Option<Arc<EndUserPolicy>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for Authenticate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        if PUBLIC_PATH_PREFIXES.iter().any(|p| path.starts_with(p)) {
            return Box::pin(self.inner.call(req));
        }
        let caller = match &*self.policy {
            AuthPolicy::Insecure => Ok(Caller::insecure()),
            AuthPolicy::Tokens(table) => authenticate(table, req.headers()),
        };
        let caller = match (caller, &self.end_users) {
            (Ok(caller), Some(end_users)) => bind_end_user(caller, end_users, req.headers()),
            (caller, _) => caller,
        };
        match caller {
            Ok(caller) => {
                tracing::debug!(path, role = %caller.role, actor = %caller.actor, "authenticated");
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Err(refusal) => {
                tracing::warn!(path, reason = %refusal.log_reason(), "request refused");
                let response = Status::from(ApiError::Unauthenticated(refusal)).into_http::<R>();
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

/// Why a request was not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No `authorization` header.
    Missing,
    /// The header is not `Bearer <token>`.
    Malformed,
    /// The token is not configured.
    UnknownToken,
    /// The token is an app role's, and the end-user assertion binding is configured but the
    /// call's `x-daojia-user` assertion is missing or not valid.
    EndUser(AssertionRefusal),
}

impl AuthRefusal {
    fn log_reason(self) -> std::borrow::Cow<'static, str> {
        if let AuthRefusal::EndUser(refusal) = self {
            return format!("end-user assertion refused: {refusal:?}").into();
        }
        std::borrow::Cow::Borrowed(match self {
            AuthRefusal::Missing => "no authorization header",
            AuthRefusal::Malformed => {
                "authorization header is neither a bearer token nor basic credentials"
            }
            AuthRefusal::UnknownToken | AuthRefusal::EndUser(_) => "unknown bearer token",
        })
    }
}

/// With end-user binding, an app-role caller's end user from the `x-daojia-user` assertion,
/// checked against the system clock; other roles are not bound.
fn bind_end_user(
    mut caller: Caller,
    end_users: &EndUserPolicy,
    headers: &http::HeaderMap,
) -> Result<Caller, AuthRefusal> {
    if !matches!(caller.role, Role::CustomerApp | Role::WorkerApp) {
        return Ok(caller);
    }
    let refused = AuthRefusal::EndUser;
    let assertion = headers
        .get(end_user::HEADER)
        .ok_or(refused(AssertionRefusal::Missing))?
        .to_str()
        .map_err(|_| refused(AssertionRefusal::Malformed))?;
    let now = jsonwebtoken::get_current_timestamp();
    let user = end_users
        .verify(caller.role, assertion.trim(), now)
        .map_err(refused)?;
    caller.end_user = Some(user);
    Ok(caller)
}

fn authenticate(table: &TokenTable, headers: &http::HeaderMap) -> Result<Caller, AuthRefusal> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthRefusal::Missing)?;
    let value = value.to_str().map_err(|_| AuthRefusal::Malformed)?;
    let (scheme, credentials) = value.split_once(' ').ok_or(AuthRefusal::Malformed)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return table
            .authenticate(credentials.trim())
            .cloned()
            .ok_or(AuthRefusal::UnknownToken);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        // EventStoreDB clients send `user:password`: here the actor and its token.
        let decoded = decode_base64(credentials.trim()).ok_or(AuthRefusal::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthRefusal::Malformed)?;
        let (user, token) = decoded.split_once(':').ok_or(AuthRefusal::Malformed)?;
        return match table.authenticate(token) {
            Some(caller) if caller.actor.as_str() == user => Ok(caller.clone()),
            _ => Err(AuthRefusal::UnknownToken),
        };
    }
    Err(AuthRefusal::Malformed)
}

/// Standard base64 with padding (RFC 4648 §4), as HTTP Basic credentials use; `None` if the
/// text is not exactly that.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let last = bytes.len() / 4 - 1;
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i != last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pad as u32;
        let group = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&group[..3 - pad]);
    }
    Some(out)
}

/// The authenticated caller of a request.
///
/// Every request past [`AuthLayer`] has one; a missing one means the service was mounted
/// without the layer, and is refused rather than trusted.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or(ApiError::Unauthenticated(AuthRefusal::Missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn table() -> TokenTable {
        let mut t = TokenTable::default();
        t.add("ops", "ops-token-0123456789", Some("alice"), "test")
            .unwrap();
        t
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_header_is_parsed_strictly() {
        let t = table();
        let ok = authenticate(&t, &headers("Bearer ops-token-0123456789")).unwrap();
        assert_eq!((ok.role, ok.actor.as_str()), (Role::Ops, "alice"));
        let lower = authenticate(&t, &headers("bearer ops-token-0123456789")).unwrap();
        assert_eq!(lower.role, Role::Ops);
        // Basic credentials: the actor as user name, its token as password.
        let basic =
            authenticate(&t, &headers("Basic YWxpY2U6b3BzLXRva2VuLTAxMjM0NTY3ODk=")).unwrap();
        assert_eq!((basic.role, basic.actor.as_str()), (Role::Ops, "alice"));
        let cases = [
            ("Basic ops-token-0123456789", AuthRefusal::Malformed),
            // bob:ops-token-0123456789 (right token, wrong user)
            (
                "Basic Ym9iOm9wcy10b2tlbi0wMTIzNDU2Nzg5",
                AuthRefusal::UnknownToken,
            ),
            // alice:wrong-token-0123456789
            (
                "Basic YWxpY2U6d3JvbmctdG9rZW4tMDEyMzQ1Njc4OQ==",
                AuthRefusal::UnknownToken,
            ),
            ("Basic YWxpY2U=", AuthRefusal::Malformed),
            ("Basic ====", AuthRefusal::Malformed),
            ("ops-token-0123456789", AuthRefusal::Malformed),
            ("Bearer ops-token-012345678", AuthRefusal::UnknownToken),
            ("Bearer ", AuthRefusal::UnknownToken),
        ];
        for (value, want) in cases {
            assert_eq!(authenticate(&t, &headers(value)), Err(want), "{value:?}");
        }
        assert_eq!(
            authenticate(&t, &http::HeaderMap::new()),
            Err(AuthRefusal::Missing)
        );
    }
}
