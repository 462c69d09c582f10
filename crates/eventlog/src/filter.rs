//! Filters for `$all` reads and subscriptions: by stream name or event type, by prefix or regex.

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

#[derive(Clone, Debug)]
enum Matcher {
    Prefixes(Vec<String>),
    Regex(fancy_regex::Regex),
}

/// A `$all` filter. Regexes support look-around (as EventStoreDB's .NET regexes do), so the
/// clients' default "exclude system events" filter `^(?!\$)` works unchanged.
#[derive(Clone, Debug)]
pub struct Filter {
    target: FilterTarget,
    matcher: Matcher,
}

/// Longest regex accepted, in bytes.
const MAX_REGEX_LEN: usize = 4096;

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
        let re = fancy_regex::Regex::new(pattern).map_err(|e| {
            Error::InvalidArgument(format!("invalid filter regex {pattern:?}: {e}"))
        })?;
        Ok(Filter {
            target,
            matcher: Matcher::Regex(re),
        })
    }

    /// The field this filter looks at.
    pub fn target(&self) -> FilterTarget {
        self.target
    }

    /// What the filter matches, for backends that hand filters on to a server.
    pub fn spec(&self) -> FilterSpec<'_> {
        match &self.matcher {
            Matcher::Prefixes(p) => FilterSpec::Prefixes(p),
            Matcher::Regex(re) => FilterSpec::Regex(re.as_str()),
        }
    }

    /// Whether an event passes.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        let field = match self.target {
            FilterTarget::StreamName => event.stream(),
            FilterTarget::EventType => event.event_type(),
        };
        match &self.matcher {
            Matcher::Prefixes(p) => p.iter().any(|p| field.starts_with(p.as_str())),
            // A regex that gives up (backtrack limit) does not match.
            Matcher::Regex(re) => re.is_match(field).unwrap_or(false),
        }
    }
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
