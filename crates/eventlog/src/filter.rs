//! Filters for `$all` reads and subscriptions: by stream name or event type, by prefix or regex.
//!
//! A regex runs on the linear-time `regex` engine unless it needs look-around or
//! backreferences (the clients' default "exclude system events" filter `^(?!\$)` does, as
//! EventStoreDB's .NET regexes allow them); those run on `fancy_regex`'s backtracking engine
//! with a backtrack limit. Compiled programs of both engines have a size limit, checked when
//! the filter is built. A match that hits the backtrack limit is an error
//! ([`Error::InvalidArgument`] naming the filter), never a silent "no match".

use crate::error::{Error, Result};
use crate::types::RecordedEvent;

/// Which field a filter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterTarget {
    /// The event's stream name.
    StreamName,
    /// The event's type.
    EventType,
}

/// A filter's matcher as given: its prefixes or its regex pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterSpec<'a> {
    /// The field starts with one of these.
    Prefixes(&'a [String]),
    /// The field matches this pattern.
    Regex(&'a str),
}

/// The engine a regex filter runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegexEngine {
    /// The `regex` crate: time linear in the field's length, whatever the pattern.
    Linear,
    /// `fancy_regex`, for look-around and backreferences: backtracking, with a step limit.
    Backtracking,
}

#[derive(Clone, Debug)]
enum Matcher {
    Prefixes(Vec<String>),
    Linear(regex::Regex),
    Backtracking(fancy_regex::Regex),
}

/// A `$all` filter.
#[derive(Clone, Debug)]
pub struct Filter {
    target: FilterTarget,
    matcher: Matcher,
}

/// Longest regex accepted, in bytes.
const MAX_REGEX_LEN: usize = 4096;

/// Largest compiled program of either engine, in bytes (`regex`'s `size_limit`,
/// `fancy_regex`'s `delegate_size_limit`): a short pattern such as `\w{1000}{1000}` compiles to
/// far more than its length.
pub const MAX_REGEX_PROGRAM_BYTES: usize = 1 << 20;

/// Backtracking steps one match of a look-around regex may take before it fails. A filter
/// such as `^((?<=[\w-])[\w-]|[\w-])+\s$` needs millions on a 30-byte stream name (and 10,000 at 13 bytes); ordinary
/// look-around filters (`^(?!\$)`, `^(?=order-).*-1$`) need a few dozen.
pub const MAX_BACKTRACK_STEPS: usize = 10_000;

impl Filter {
    /// Matches events whose field starts with any of `prefixes`.
    pub fn prefixes<I, S>(target: FilterTarget, prefixes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let prefixes: Vec<String> = prefixes.into_iter().map(Into::into).collect();
        if prefixes.is_empty() {
            return Err(Error::InvalidArgument(
                "a prefix filter needs at least one prefix".into(),
            ));
        }
        Ok(Filter {
            target,
            matcher: Matcher::Prefixes(prefixes),
        })
    }

    /// Matches events whose field matches `pattern` anywhere (anchor it with `^` and `$`).
    pub fn regex(target: FilterTarget, pattern: &str) -> Result<Self> {
        if pattern.len() > MAX_REGEX_LEN {
            return Err(Error::InvalidArgument(format!(
                "filter regex is {} bytes, over the limit of {MAX_REGEX_LEN}",
                pattern.len()
            )));
        }
        let linear = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_PROGRAM_BYTES)
            .dfa_size_limit(MAX_REGEX_PROGRAM_BYTES)
            .build();
        let matcher = match linear {
            Ok(re) => Matcher::Linear(re),
            Err(regex::Error::CompiledTooBig(limit)) => {
                return Err(too_big(pattern, limit));
            }
            // Look-around and backreferences are syntax errors to `regex`: try the
            // backtracking engine, which reports real syntax errors itself.
            Err(_) => {
                let re = fancy_regex::RegexBuilder::new(pattern)
                    .backtrack_limit(MAX_BACKTRACK_STEPS)
                    .delegate_size_limit(MAX_REGEX_PROGRAM_BYTES)
                    .delegate_dfa_size_limit(MAX_REGEX_PROGRAM_BYTES)
                    .build()
                    .map_err(|e| match e {
                        fancy_regex::Error::CompileError(ref c)
                            if match &**c {
                                fancy_regex::CompileError::InnerError(b) => {
                                    b.size_limit().is_some()
                                }
                                fancy_regex::CompileError::PatternTooComplex => true,
                                _ => false,
                            } =>
                        {
                            too_big(pattern, MAX_REGEX_PROGRAM_BYTES)
                        }
                        e => {
                            Error::InvalidArgument(format!("invalid filter regex {pattern:?}: {e}"))
                        }
                    })?;
                Matcher::Backtracking(re)
            }
        };
        Ok(Filter { target, matcher })
    }

    /// The field this filter looks at.
    pub fn target(&self) -> FilterTarget {
        self.target
    }

    /// The engine a regex filter runs on; `None` for a prefix filter.
    pub fn engine(&self) -> Option<RegexEngine> {
        match &self.matcher {
            Matcher::Prefixes(_) => None,
            Matcher::Linear(_) => Some(RegexEngine::Linear),
            Matcher::Backtracking(_) => Some(RegexEngine::Backtracking),
        }
    }

    /// What the filter matches, for backends that hand filters on to a server.
    pub fn spec(&self) -> FilterSpec<'_> {
        match &self.matcher {
            Matcher::Prefixes(p) => FilterSpec::Prefixes(p),
            Matcher::Linear(re) => FilterSpec::Regex(re.as_str()),
            Matcher::Backtracking(re) => FilterSpec::Regex(re.as_str()),
        }
    }

    /// Whether an event passes. A look-around regex that runs out of backtracking steps on
    /// this event is an [`Error::InvalidArgument`] naming the pattern: the read it serves has
    /// to end, as skipping the event would silently drop it and matching it would be a guess.
    pub fn matches(&self, event: &RecordedEvent) -> Result<bool> {
        let field = match self.target {
            FilterTarget::StreamName => event.stream(),
            FilterTarget::EventType => event.event_type(),
        };
        match &self.matcher {
            Matcher::Prefixes(p) => Ok(p.iter().any(|p| field.starts_with(p.as_str()))),
            Matcher::Linear(re) => Ok(re.is_match(field)),
            Matcher::Backtracking(re) => re.is_match(field).map_err(|e| {
                Error::InvalidArgument(format!(
                    "filter regex {:?} gave up on {} {field:?} at position {}: {e} \
                     (limit {MAX_BACKTRACK_STEPS} backtracking steps); use a pattern without \
                     look-around, which runs in linear time",
                    re.as_str(),
                    match self.target {
                        FilterTarget::StreamName => "stream",
                        FilterTarget::EventType => "event type",
                    },
                    event.position.0,
                ))
            }),
        }
    }
}

fn too_big(pattern: &str, limit: usize) -> Error {
    Error::InvalidArgument(format!(
        "filter regex {pattern:?} compiles to more than {limit} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_regex_is_an_invalid_argument() {
        assert!(matches!(
            Filter::regex(FilterTarget::StreamName, "(unclosed"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(Filter::prefixes(FilterTarget::EventType, Vec::<String>::new()).is_err());
    }

    fn event(stream: &str, event_type: &str) -> RecordedEvent {
        use crate::types::{ContentType, EventId, Position, Revision};
        RecordedEvent::new(
            stream,
            Revision(0),
            Position(7),
            EventId::from_u128(1),
            event_type,
            ContentType::Json,
            0,
            b"",
            b"{}",
        )
    }

    #[test]
    fn plain_patterns_run_linear_and_look_around_runs_backtracking() {
        for (pattern, engine) in [
            ("^order-", RegexEngine::Linear),
            ("^(order|worker)-[0-9]+$", RegexEngine::Linear),
            ("^((a|aa)+)+$", RegexEngine::Linear),
            (r"^(?!\$)", RegexEngine::Backtracking),
            (r"^((?<=[\w-])[\w-]|[\w-])+\s$", RegexEngine::Backtracking),
            (r"^(\w)\1$", RegexEngine::Backtracking),
        ] {
            let f = Filter::regex(FilterTarget::StreamName, pattern).unwrap();
            assert_eq!(f.engine(), Some(engine), "{pattern}");
            assert_eq!(f.spec(), FilterSpec::Regex(pattern));
        }
        let f = Filter::prefixes(FilterTarget::StreamName, ["a"]).unwrap();
        assert_eq!(f.engine(), None);
    }

    #[test]
    fn the_clients_default_filter_still_excludes_system_streams() {
        let f = Filter::regex(FilterTarget::StreamName, r"^(?!\$)").unwrap();
        assert!(f.matches(&event("order-1", "OrderPosted")).unwrap());
        assert!(!f.matches(&event("$settings", "Settings")).unwrap());
    }

    #[test]
    fn a_nested_quantifier_without_look_around_matches_in_linear_time() {
        // Catastrophic for a backtracking engine; the linear one answers at once.
        let f = Filter::regex(FilterTarget::StreamName, "^((a|aa)+)+$").unwrap();
        let long = format!("{}b", "a".repeat(5000));
        assert!(!f.matches(&event(&long, "T")).unwrap());
        assert!(f.matches(&event(&"a".repeat(5000), "T")).unwrap());
    }

    #[test]
    fn a_look_around_pattern_that_runs_out_of_steps_is_an_error_naming_it() {
        let pattern = r"^((?<=[\w-])[\w-]|[\w-])+\s$";
        let f = Filter::regex(FilterTarget::StreamName, pattern).unwrap();
        let err = f
            .matches(&event("order-0123456789abcdef0123456789", "T"))
            .unwrap_err();
        let Error::InvalidArgument(message) = err else {
            panic!("expected InvalidArgument, got {err:?}");
        };
        assert!(message.contains(&format!("{pattern:?}")), "{message}");
        assert!(message.contains("order-0123456789abcdef"), "{message}");
        // Short names stay within the limit and match as the pattern says.
        assert!(!f.matches(&event("ab", "T")).unwrap());
        assert!(f.matches(&event("ab ", "T")).unwrap());
    }

    #[test]
    fn patterns_that_compile_too_big_are_refused_when_built() {
        for pattern in [r"\w{1000}{1000}", r"(?=x)\w{1000}{1000}"] {
            let err = Filter::regex(FilterTarget::EventType, pattern).unwrap_err();
            let Error::InvalidArgument(message) = err else {
                panic!("expected InvalidArgument, got {err:?}");
            };
            assert!(
                message.contains("compiles to more than"),
                "{pattern}: {message}"
            );
        }
        let long = "a".repeat(MAX_REGEX_LEN + 1);
        assert!(Filter::regex(FilterTarget::EventType, &long).is_err());
    }

    #[test]
    fn spec_gives_back_what_the_filter_was_built_from() {
        let f = Filter::prefixes(FilterTarget::EventType, ["Order", "Worker"]).unwrap();
        assert_eq!(
            f.spec(),
            FilterSpec::Prefixes(&["Order".to_string(), "Worker".to_string()])
        );
        let f = Filter::regex(FilterTarget::StreamName, "^order-").unwrap();
        assert_eq!(f.spec(), FilterSpec::Regex("^order-"));
    }
}
