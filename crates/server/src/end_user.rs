//! End-user binding (`daojia serve --end-user-keys FILE`), off by default: calls made with a
//! `customer-app` or `worker-app` token must then carry a short-lived JWT in the
//! `x-daojia-user` header, signed by the app backend, whose `sub` is the household (customer
//! id) or the worker (worker id) the call is made for. Such a call may name only that end
//! user's id and touch only that end user's orders; anything else is PERMISSION_DENIED.
//!
//! Without it, app-role tokens stand for trusted server-side backends that authenticate their
//! users and check ownership themselves (crates/server/README.md, "End-user binding").
//!
//! The keys file holds one `KEY_ID ALGORITHM KEY` per line (`#` comments, blank lines skipped):
//! `HS256` with a shared secret of at least [`MIN_SECRET_BYTES`] bytes, or `EdDSA` with an
//! Ed25519 public key (the raw 32 bytes, as a JWK's `x`), both in base64url. An assertion
//! names its key in the JWT header's `kid` (optional when the file holds one key). Signatures,
//! algorithms and `aud` are checked by the `jsonwebtoken` crate; `exp` (required, at most the
//! maximum age ahead) and `nbf` against the time given to [`EndUserPolicy::verify`].

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use daojia_domain::order::{NoShow, Order, Party};
use daojia_domain::{CustomerId, OrderCommand, WorkerId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::auth::Role;

/// The request header carrying the assertion.
pub const HEADER: &str = "x-daojia-user";

/// The shortest HS256 secret accepted, in bytes (the size of its SHA-256 output).
pub const MIN_SECRET_BYTES: usize = 32;

/// How far `exp` and `nbf` may be off to allow for clock skew between the app backend and the
/// server, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The end user a call is made for, from a verified assertion's `sub`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndUser {
    /// A household, for `customer-app` calls.
    Customer(CustomerId),
    /// A worker, for `worker-app` calls.
    Worker(WorkerId),
}

impl fmt::Display for EndUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndUser::Customer(c) => write!(f, "customer {c}"),
            EndUser::Worker(w) => write!(f, "worker {w}"),
        }
    }
}

/// A keys file entry is refused; the message names the line and why, never the key.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct KeyFileError {
    /// Where (`user-keys.txt line 3`).
    pub origin: String,
    /// What is wrong.
    pub reason: String,
}

struct Key {
    id: String,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The verification keys of end-user assertions. Its `Debug` output shows key ids only.
pub struct EndUserKeys {
    keys: Vec<Key>,
}

impl fmt::Debug for EndUserKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.id, k.algorithm)))
            .finish()
    }
}

impl EndUserKeys {
    /// Parses a keys file (see the module doc); `file_name` names it in errors. A file without
    /// any key is refused.
    pub fn parse(text: &str, file_name: &str) -> Result<Self, KeyFileError> {
        let mut keys: Vec<Key> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| KeyFileError {
                origin: format!("{file_name} line {}", i + 1),
                reason,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, algorithm, encoded] = fields[..] else {
                return Err(err(format!(
                    "expected `KEY_ID ALGORITHM KEY`, found {} fields",
                    fields.len()
                )));
            };
            let id_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if id.len() > 64 || !id.chars().all(id_ok) {
                return Err(err(format!(
                    "invalid key id {id:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-'"
                )));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(err(format!("key id {id:?} is configured twice")));
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map_err(|_| err(format!("the key of {id:?} is not base64url")))?;
            let (algorithm, key) = match algorithm {
                "HS256" if bytes.len() >= MIN_SECRET_BYTES => (
                    Algorithm::HS256,
                    DecodingKey::from_secret(&bytes)
                        .map_err(|e| err(format!("the secret of {id:?} is refused: {e}")))?,
                ),
                "HS256" => {
                    return Err(err(format!(
                        "the HS256 secret of {id:?} is {} bytes; use at least {MIN_SECRET_BYTES} \
                         random bytes",
                        bytes.len()
                    )));
                }
                "EdDSA" if bytes.len() == 32 => {
                    (Algorithm::EdDSA, DecodingKey::from_ed_der(&bytes))
                }
                "EdDSA" => {
                    return Err(err(format!(
                        "the EdDSA key of {id:?} is {} bytes; an Ed25519 public key is the raw 32 \
                         bytes (a JWK's `x`)",
                        bytes.len()
                    )));
                }
                other => {
                    return Err(err(format!(
                        "unsupported algorithm {other:?} (expected HS256 or EdDSA)"
                    )));
                }
            };
            keys.push(Key {
                id: id.to_string(),
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err(KeyFileError {
                origin: file_name.to_string(),
                reason: "no keys: expected lines of `KEY_ID ALGORITHM KEY`".into(),
            });
        }
        Ok(EndUserKeys { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (never, for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, kid: Option<&str>) -> Option<&Key> {
        match (kid, &self.keys[..]) {
            (Some(kid), keys) => keys.iter().find(|k| k.id == kid),
            (None, [only]) => Some(only),
            (None, _) => None,
        }
    }
}

/// Why an assertion was refused (UNAUTHENTICATED; messages in `status.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssertionRefusal {
    /// No `x-daojia-user` header on a call that needs one.
    Missing,
    /// Not a well-formed JWT, or its claims are missing or of the wrong type.
    Malformed,
    /// The header's `kid` names no configured key (or is absent with several keys).
    UnknownKey,
    /// The header's `alg` is not the key's algorithm.
    WrongAlgorithm,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `exp` is further ahead than the configured maximum age.
    TooLongLived {
        /// The maximum age, in seconds.
        max_age_secs: u64,
    },
    /// `nbf` is still ahead.
    NotYetValid,
    /// `aud` is not the configured audience (or is present when none is configured).
    WrongAudience,
    /// `sub` is not a customer id (customer-app) or worker id (worker-app).
    BadSubject {
        /// The role whose id `sub` should be.
        role: Role,
    },
}

impl AssertionRefusal {
    /// The ErrorInfo reason code.
    pub fn reason(self) -> &'static str {
        match self {
            AssertionRefusal::Missing => "END_USER_ASSERTION_MISSING",
            AssertionRefusal::Expired => "END_USER_ASSERTION_EXPIRED",
            AssertionRefusal::TooLongLived { .. } => "END_USER_ASSERTION_TOO_LONG_LIVED",
            _ => "END_USER_ASSERTION_INVALID",
        }
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
}

/// What the deployment configured: the keys, how long an assertion may live, and the
/// audience it must name, if any.
#[derive(Debug)]
pub struct EndUserPolicy {
    keys: EndUserKeys,
    max_age: Duration,
    audience: Option<String>,
}

impl EndUserPolicy {
    /// A policy accepting assertions signed with `keys` whose `exp` is at most `max_age` ahead
    /// and, with `audience`, whose `aud` names it (without, an `aud` is refused).
    pub fn new(keys: EndUserKeys, max_age: Duration, audience: Option<String>) -> Self {
        // `jsonwebtoken` picks its provider from its crate features; installing it here too
        // keeps verification working should another crate in the build enable the other one.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        EndUserPolicy {
            keys,
            max_age,
            audience,
        }
    }

    /// The longest an assertion may live.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Verifies the assertion `token` presented with a `role` token at `now` (seconds since
    /// the Unix epoch) and returns its end user.
    pub fn verify(&self, role: Role, token: &str, now: u64) -> Result<EndUser, AssertionRefusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AssertionRefusal::Malformed)?;
        let key = self
            .keys
            .find(header.kid.as_deref())
            .ok_or(AssertionRefusal::UnknownKey)?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Times are checked below against `now` (the library would read the system clock).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => AssertionRefusal::BadSignature,
                ErrorKind::InvalidAlgorithm => AssertionRefusal::WrongAlgorithm,
                ErrorKind::InvalidAudience => AssertionRefusal::WrongAudience,
                ErrorKind::MissingRequiredClaim(c) if c == "aud" => AssertionRefusal::WrongAudience,
                _ => AssertionRefusal::Malformed,
            })?
            .claims;
        if claims.exp.saturating_add(LEEWAY_SECS) <= now {
            return Err(AssertionRefusal::Expired);
        }
        let max_age_secs = self.max_age.as_secs();
        if claims.exp > now.saturating_add(max_age_secs).saturating_add(LEEWAY_SECS) {
            return Err(AssertionRefusal::TooLongLived { max_age_secs });
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(AssertionRefusal::NotYetValid);
        }
        let bad_subject = AssertionRefusal::BadSubject { role };
        match role {
            Role::CustomerApp => claims
                .sub
                .parse()
                .map(EndUser::Customer)
                .map_err(|_| bad_subject),
            Role::WorkerApp => claims
                .sub
                .parse()
                .map(EndUser::Worker)
                .map_err(|_| bad_subject),
            Role::Ops | Role::Analytics | Role::Admin => Err(bad_subject),
        }
    }
}

/// Why a bound call was refused (PERMISSION_DENIED; messages in `status.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The request names another customer or worker than the assertion's end user.
    OtherUser {
        /// The request field (`customer_id`, `worker_id`, `subject.id`).
        field: &'static str,
        /// The id it holds.
        given: String,
        /// Who the assertion is for.
        end_user: EndUser,
    },
    /// The order is another household's, or one the worker has no part in.
    NotTheirOrder {
        /// The order.
        order: String,
        /// Who the assertion is for.
        end_user: EndUser,
    },
}

impl Denial {
    /// The ErrorInfo reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::OtherUser { .. } => "END_USER_MISMATCH",
            Denial::NotTheirOrder { .. } => "NOT_END_USERS_ORDER",
        }
    }
}

/// PERMISSION_DENIED unless the customer named in `field` is `end_user` (no binding: allowed).
pub fn check_customer(
    end_user: Option<EndUser>,
    field: &'static str,
    customer: CustomerId,
) -> Result<(), Denial> {
    match end_user {
        None => Ok(()),
        Some(EndUser::Customer(c)) if c == customer => Ok(()),
        Some(end_user) => Err(Denial::OtherUser {
            field,
            given: customer.to_string(),
            end_user,
        }),
    }
}

/// PERMISSION_DENIED unless the worker named in `field` is `end_user` (no binding: allowed).
pub fn check_worker(
    end_user: Option<EndUser>,
    field: &'static str,
    worker: WorkerId,
) -> Result<(), Denial> {
    match end_user {
        None => Ok(()),
        Some(EndUser::Worker(w)) if w == worker => Ok(()),
        Some(end_user) => Err(Denial::OtherUser {
            field,
            given: worker.to_string(),
            end_user,
        }),
    }
}

/// Checks an order command of a bound caller: the customer or worker it names is the end user
/// (before anything is loaded), and, given the order as loaded (`None`: not posted yet), the
/// order is theirs: the household's own, or for a worker one they hold or held a slot on, were
/// offered, or passed over. Grabbing needs no part in the order (the grab pool is open to
/// every qualified worker).
pub fn check_command(
    end_user: Option<EndUser>,
    command: &OrderCommand,
    order: Option<&Order>,
) -> Result<(), Denial> {
    let Some(user) = end_user else {
        return Ok(());
    };
    // Who the command says acts; `None` when the request names nobody (a customer reporting
    // a worker's no-show acts as the order's customer).
    let party = match command {
        OrderCommand::Post(post) => Some(Party::Customer(post.customer)),
        OrderCommand::Cancel { by, .. } | OrderCommand::RaiseDispute { by, .. } => Some(*by),
        OrderCommand::Replan { customer, .. }
        | OrderCommand::Review { customer, .. }
        | OrderCommand::FileComplaint { customer, .. } => Some(Party::Customer(*customer)),
        OrderCommand::ReportNoShow(NoShow::Customer { reported_by }) => {
            Some(Party::Worker(*reported_by))
        }
        OrderCommand::ReportNoShow(NoShow::Worker { .. }) => None,
        OrderCommand::Accept { worker, .. } | OrderCommand::Grab { worker } => {
            Some(Party::Worker(worker.worker))
        }
        OrderCommand::Decline { worker, .. }
        | OrderCommand::CheckIn { worker, .. }
        | OrderCommand::Complete { worker, .. } => Some(Party::Worker(*worker)),
        // What the dispatcher, the reactor and ops do: never on an end user's behalf.
        _ => Some(Party::Ops),
    };
    match party {
        Some(Party::Customer(c)) => check_customer(end_user, "customer_id", c)?,
        Some(Party::Worker(w)) => check_worker(end_user, "worker_id", w)?,
        None => {}
        Some(Party::Ops) => {
            return Err(Denial::NotTheirOrder {
                order: order.map(|o| o.id.to_string()).unwrap_or_default(),
                end_user: user,
            });
        }
    }
    match order {
        // Grabbing needs no part in the order: the grab pool is open.
        Some(_) if matches!(command, OrderCommand::Grab { .. }) => Ok(()),
        Some(order) => check_order(end_user, order),
        None => Ok(()),
    }
}

/// PERMISSION_DENIED unless `order` is the bound end user's (see [`check_command`]).
pub fn check_order(end_user: Option<EndUser>, order: &Order) -> Result<(), Denial> {
    let theirs = match end_user {
        None => true,
        Some(EndUser::Customer(c)) => order.customer == c,
        Some(EndUser::Worker(w)) => {
            order.passed_over.contains(&w)
                || order.slots.iter().any(|(_, slot)| {
                    slot.assignment.as_ref().is_some_and(|a| a.worker == w)
                        || slot.offers.iter().any(|o| o.worker == w)
                })
        }
    };
    match end_user {
        Some(end_user) if !theirs => Err(Denial::NotTheirOrder {
            order: order.id.to_string(),
            end_user,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;
    const CUSTOMER: &str = "00000000-0000-4000-8000-00000000000c";

    fn secret_b64() -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET)
    }

    fn policy(audience: Option<&str>) -> EndUserPolicy {
        let keys = EndUserKeys::parse(&format!("app HS256 {}\n", secret_b64()), "k.txt").unwrap();
        EndUserPolicy::new(keys, Duration::from_secs(300), audience.map(String::from))
    }

    fn token(claims: serde_json::Value, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(String::from);
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET).unwrap()).unwrap()
    }

    #[test]
    fn assertions_are_checked_for_key_time_audience_and_subject() {
        let p = policy(None);
        let ok = token(
            serde_json::json!({"sub": CUSTOMER, "exp": NOW + 60}),
            Some("app"),
        );
        assert_eq!(
            p.verify(Role::CustomerApp, &ok, NOW),
            Ok(EndUser::Customer(CUSTOMER.parse().unwrap()))
        );
        // One key: the kid may be left out.
        let no_kid = token(serde_json::json!({"sub": CUSTOMER, "exp": NOW + 60}), None);
        assert!(p.verify(Role::CustomerApp, &no_kid, NOW).is_ok());
        let cases = [
            (
                token(serde_json::json!({"sub": CUSTOMER, "exp": NOW - 31}), None),
                AssertionRefusal::Expired,
            ),
            (
                token(
                    serde_json::json!({"sub": CUSTOMER, "exp": NOW + 3_600}),
                    None,
                ),
                AssertionRefusal::TooLongLived { max_age_secs: 300 },
            ),
            (
                token(
                    serde_json::json!({"sub": CUSTOMER, "exp": NOW + 60, "nbf": NOW + 100}),
                    None,
                ),
                AssertionRefusal::NotYetValid,
            ),
            (
                token(serde_json::json!({"sub": CUSTOMER}), None),
                AssertionRefusal::Malformed,
            ),
            (
                token(serde_json::json!({"sub": "alice", "exp": NOW + 60}), None),
                AssertionRefusal::BadSubject {
                    role: Role::CustomerApp,
                },
            ),
            (
                token(
                    serde_json::json!({"sub": CUSTOMER, "exp": NOW + 60, "aud": "x"}),
                    None,
                ),
                AssertionRefusal::WrongAudience,
            ),
            (
                token(
                    serde_json::json!({"sub": CUSTOMER, "exp": NOW + 60}),
                    Some("other"),
                ),
                AssertionRefusal::UnknownKey,
            ),
            ("not.a.jwt".to_string(), AssertionRefusal::Malformed),
            (format!("{ok}x"), AssertionRefusal::BadSignature),
        ];
        for (t, want) in cases {
            assert_eq!(p.verify(Role::CustomerApp, &t, NOW), Err(want), "{t}");
        }
        let with_aud = policy(Some("daojia"));
        let aud = token(
            serde_json::json!({"sub": CUSTOMER, "exp": NOW + 60, "aud": "daojia"}),
            None,
        );
        assert!(with_aud.verify(Role::CustomerApp, &aud, NOW).is_ok());
        assert_eq!(
            with_aud.verify(Role::CustomerApp, &no_kid, NOW),
            Err(AssertionRefusal::WrongAudience)
        );
        assert_eq!(
            p.verify(Role::Ops, &ok, NOW),
            Err(AssertionRefusal::BadSubject { role: Role::Ops })
        );
    }

    #[test]
    fn bad_key_files_are_refused_naming_the_line_without_the_key() {
        let cases = [
            ("app HS256 c2hvcnQ", "line 1", "at least 32"),
            ("app RS256 c2hvcnQ", "line 1", "unsupported algorithm"),
            ("# c\napp EdDSA c2hvcnQ", "line 2", "raw 32"),
            ("app HS256 !!!", "line 1", "not base64url"),
            ("app HS256", "line 1", "found 2 fields"),
            ("a/b HS256 c2hvcnQ", "line 1", "invalid key id"),
            ("# nothing\n", "k.txt", "no keys"),
        ];
        for (text, origin, want) in cases {
            let err = EndUserKeys::parse(text, "k.txt").unwrap_err().to_string();
            assert!(
                err.contains(origin) && err.contains(want),
                "{text:?}: {err}"
            );
            assert!(!err.contains("c2hvcnQ"), "key echoed: {err}");
        }
        let twice = format!("a HS256 {0}\na HS256 {0}", secret_b64());
        let err = EndUserKeys::parse(&twice, "k.txt").unwrap_err().to_string();
        assert!(
            err.starts_with("k.txt line 2: key id \"a\" is configured twice"),
            "{err}"
        );
    }
}
