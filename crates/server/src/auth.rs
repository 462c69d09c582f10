//! Who is calling: roles, actors and the bearer-token table they come from.
//!
//! Tokens are configured in a file (`--tokens FILE`, one `ROLE TOKEN [ACTOR]` per line) and/or
//! the environment (`DAOJIA_TOKENS="ROLE:TOKEN[:ACTOR],..."`); both name the role first. The
//! interceptor in [`crate::interceptor`] looks the presented token up here and puts the
//! [`Caller`] into the request's extensions.

use std::fmt;
use std::str::FromStr;

use crate::end_user::EndUser;

/// A caller's role (DESIGN.md section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The customer app backend, acting for households.
    CustomerApp,
    /// The worker app backend, acting for workers.
    WorkerApp,
    /// Ops staff: admin commands and ops queries.
    Ops,
    /// Read-only access to the event log.
    Analytics,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, in documentation order.
    pub const ALL: [Role; 5] = [
        Role::CustomerApp,
        Role::WorkerApp,
        Role::Ops,
        Role::Analytics,
        Role::Admin,
    ];

    /// The role's configuration name (`customer-app`, `worker-app`, `ops`, `analytics`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CustomerApp => "customer-app",
            Role::WorkerApp => "worker-app",
            Role::Ops => "ops",
            Role::Analytics => "analytics",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {s:?} (expected one of {})", names.join(", "))
            })
    }
}

/// The name recorded as the actor of what a caller does (event metadata, audit logs).
///
/// Made of ASCII letters, digits and `.`, `_`, `-`, `@`, at most 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor(String);

impl Actor {
    /// The actor of every request in `--insecure` mode.
    pub const INSECURE: &'static str = "insecure-local";

    /// Validates an actor name.
    pub fn new(name: &str) -> Result<Self, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
        if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
            return Err(format!(
                "invalid actor {name:?}: use 1 to 64 ASCII letters, digits, '.', '_', '-' or '@'"
            ));
        }
        Ok(Actor(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An authenticated caller, found in the extensions of every request that reaches a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// What the caller may do.
    pub role: Role,
    /// Who the caller is, for event metadata and audit logs.
    pub actor: Actor,
    /// With end-user binding (`--end-user-keys`), the household or worker an app-role call is
    /// made for, from its verified `x-daojia-user` assertion; `None` otherwise.
    pub end_user: Option<EndUser>,
}

impl Caller {
    /// A caller acting for no particular end user.
    pub fn new(role: Role, actor: Actor) -> Self {
        Caller {
            role,
            actor,
            end_user: None,
        }
    }

    /// PERMISSION_DENIED unless the caller has `role` (or is `admin`, which may do everything).
    pub fn require(&self, role: Role, action: &'static str) -> Result<(), crate::ApiError> {
        if self.role == role || self.role == Role::Admin {
            Ok(())
        } else {
            Err(crate::ApiError::PermissionDenied {
                role: self.role,
                action,
            })
        }
    }

    /// The caller of every request in `--insecure` mode: an admin named `insecure-local`.
    pub fn insecure() -> Self {
        Caller {
            role: Role::Admin,
            actor: Actor(Actor::INSECURE.to_string()),
            end_user: None,
        }
    }
}

/// A configured token is refused; the message names where and why, never the token itself.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct TokenError {
    /// Where the entry came from (`tokens.txt line 3`, `DAOJIA_TOKENS entry 2`).
    pub origin: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured bearer tokens and the callers they stand for.
///
/// Its `Debug` output never shows a token.
#[derive(Clone, Default)]
pub struct TokenTable {
    entries: Vec<(String, Caller)>,
}

impl fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(_, caller)| caller))
            .finish()
    }
}

impl TokenTable {
    /// Adds one token; `origin` names the entry in errors.
    pub fn add(
        &mut self,
        role: &str,
        token: &str,
        actor: Option<&str>,
        origin: &str,
    ) -> Result<(), TokenError> {
        let err = |reason: String| TokenError {
            origin: origin.to_string(),
            reason,
        };
        let role: Role = role.parse().map_err(err)?;
        check_token(token).map_err(err)?;
        let actor = Actor::new(actor.unwrap_or(role.as_str())).map_err(err)?;
        if self.entries.iter().any(|(t, _)| t == token) {
            return Err(err("the same token is configured twice".into()));
        }
        self.entries
            .push((token.to_string(), Caller::new(role, actor)));
        Ok(())
    }

    /// Adds the tokens of a tokens file: one `ROLE TOKEN [ACTOR]` per line, separated by
    /// whitespace; blank lines and lines starting with `#` are skipped.
    pub fn add_file(&mut self, text: &str, file_name: &str) -> Result<(), TokenError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = format!("{file_name} line {}", i + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [role, token] => self.add(role, token, None, &origin)?,
                [role, token, actor] => self.add(role, token, Some(actor), &origin)?,
                _ => {
                    return Err(TokenError {
                        origin,
                        reason: format!(
                            "expected `ROLE TOKEN [ACTOR]`, found {} fields",
                            fields.len()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds the tokens of a `DAOJIA_TOKENS` value: `ROLE:TOKEN[:ACTOR]` entries separated by
    /// commas; empty entries are skipped.
    pub fn add_env(&mut self, value: &str, var_name: &str) -> Result<(), TokenError> {
        for (i, entry) in value.split(',').enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let origin = format!("{var_name} entry {}", i + 1);
            let fields: Vec<&str> = entry.split(':').collect();
            match fields[..] {
                [role, token] => self.add(role, token, None, &origin)?,
                [role, token, actor] => self.add(role, token, Some(actor), &origin)?,
                _ => {
                    return Err(TokenError {
                        origin,
                        reason: "expected `ROLE:TOKEN` or `ROLE:TOKEN:ACTOR`".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller a presented token stands for.
    ///
    /// Compares against every entry in constant time per entry, so the time taken does not
    /// tell how much of a guess matched.
    pub fn authenticate(&self, presented: &str) -> Option<&Caller> {
        let mut found = None;
        for (token, caller) in &self.entries {
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = Some(caller);
            }
        }
        found
    }
}

/// Tokens use the RFC 6750 `b64token` alphabet and are at least [`MIN_TOKEN_LEN`] long.
fn check_token(token: &str) -> Result<(), String> {
    let body = token.trim_end_matches('=');
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/');
    if body.is_empty() || !body.chars().all(ok_char) {
        return Err(
            "a token may hold only ASCII letters, digits and '-', '.', '_', '~', '+', '/' \
             (and trailing '=')"
                .into(),
        );
    }
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "a token must be at least {MIN_TOKEN_LEN} characters long"
        ));
    }
    if token.parse::<Role>().is_ok() {
        return Err("a token must not be a role name".into());
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        // Compare with a byte of `b` even when the lengths differ, so the loop's cost
        // depends on the configured token's length only.
        let y = b.get(i).copied().unwrap_or(!x);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "ops-token-0123456789";
    const T2: &str = "analytics-token-abcdef";

    #[test]
    fn file_lines_and_env_entries_map_tokens_to_callers() {
        let mut table = TokenTable::default();
        table
            .add_file(
                &format!("# ops staff\n\nops {T1} alice\n  analytics   {T2}  \n"),
                "tokens.txt",
            )
            .unwrap();
        table
            .add_env("worker-app:worker-token-00000000:wk, ", "DAOJIA_TOKENS")
            .unwrap();
        assert_eq!(table.len(), 3);
        let ops = table.authenticate(T1).unwrap();
        assert_eq!((ops.role, ops.actor.as_str()), (Role::Ops, "alice"));
        let analytics = table.authenticate(T2).unwrap();
        assert_eq!(
            (analytics.role, analytics.actor.as_str()),
            (Role::Analytics, "analytics")
        );
        let worker = table.authenticate("worker-token-00000000").unwrap();
        assert_eq!(
            (worker.role, worker.actor.as_str()),
            (Role::WorkerApp, "wk")
        );
        assert_eq!(table.authenticate("ops-token-012345678"), None);
        assert_eq!(table.authenticate("ops-token-01234567890"), None);
        assert_eq!(table.authenticate(""), None);
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_token() {
        let cases = [
            ("boss sometoken-0123456789", "unknown role \"boss\""),
            ("ops short", "at least 16"),
            ("ops bad\"token-0123456789", "only ASCII"),
            ("ops ops-token-0123456789 al ice", "found 4 fields"),
            ("ops ops-token-0123456789 al!ce", "invalid actor"),
            (
                "ops ops-token-0123456789\nadmin ops-token-0123456789",
                "twice",
            ),
        ];
        for (text, want) in cases {
            let err = TokenTable::default()
                .add_file(text, "tokens.txt")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with("tokens.txt line "), "{err}");
            assert!(!err.contains("0123456789"), "token echoed: {err}");
        }
        let err = TokenTable::default()
            .add_env("ops:ops-token-0123456789,ops", "DAOJIA_TOKENS")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("DAOJIA_TOKENS entry 2: expected"), "{err}");
    }

    #[test]
    fn debug_output_hides_tokens() {
        let mut table = TokenTable::default();
        table.add("admin", T1, None, "test").unwrap();
        let shown = format!("{table:?}");
        assert!(shown.contains("Admin") && !shown.contains(T1), "{shown}");
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Ops".parse::<Role>().is_err());
    }
}
