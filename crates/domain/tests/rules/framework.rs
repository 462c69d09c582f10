//! A small given/when/then harness over events, after cqrs's `TestFramework`: history is folded
//! with `evolve`, the command is decided at an explicit `now`, and the outcome is compared with
//! the expected events or error.

use std::fmt::Debug;

use daojia_domain::DomainError;
use daojia_domain::Timestamp;

type DecideFn<S, C, E> = Box<dyn Fn(&S, C, Timestamp) -> Result<Vec<E>, DomainError>>;

/// An aggregate under test: its starting state, decide and evolve.
pub struct Case<S, C, E> {
    state: S,
    decide: DecideFn<S, C, E>,
    evolve: fn(S, &E) -> S,
}

/// The outcome of `when`.
#[must_use = "an outcome must be checked with then/then_error/then_reason"]
pub struct Outcome<E> {
    result: Result<Vec<E>, DomainError>,
}

impl<S, C, E> Case<S, C, E> {
    pub fn new(state: S, decide: DecideFn<S, C, E>, evolve: fn(S, &E) -> S) -> Self {
        Self {
            state,
            decide,
            evolve,
        }
    }

    /// Folds past events into the state.
    pub fn given(mut self, events: &[E]) -> Self {
        for e in events {
            self.state = (self.evolve)(self.state, e);
        }
        self
    }

    /// Decides `command` at `now`.
    pub fn when(self, command: C, now: Timestamp) -> Outcome<E> {
        Outcome {
            result: (self.decide)(&self.state, command, now),
        }
    }
}

impl<E: PartialEq + Debug> Outcome<E> {
    /// Expects exactly these events.
    #[track_caller]
    pub fn then(self, expected: Vec<E>) {
        match self.result {
            Ok(events) => assert_eq!(events, expected),
            Err(e) => panic!("expected events {expected:?}, got error {e:?}"),
        }
    }

    /// Expects exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, got events {events:?}"),
            Err(e) => assert_eq!(e, expected),
        }
    }

    /// Expects an error with this reason code.
    #[track_caller]
    pub fn then_reason(self, code: &str) {
        match self.result {
            Ok(events) => panic!("expected {code}, got events {events:?}"),
            Err(e) => assert_eq!(e.reason(), code, "{e:?}"),
        }
    }

    /// The error, for tables that check it together with its reason code; panics on events.
    #[track_caller]
    pub fn error(self) -> DomainError {
        match self.result {
            Ok(events) => panic!("expected an error, got events {events:?}"),
            Err(e) => e,
        }
    }

    /// The events, for chaining a scenario; panics on error.
    #[track_caller]
    pub fn events(self) -> Vec<E> {
        match self.result {
            Ok(events) => events,
            Err(e) => panic!("expected events, got error {e:?}"),
        }
    }
}
