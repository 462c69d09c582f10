//! [`Clock`]: where the command path gets `now`. The domain never reads a clock (`decide`
//! takes `now` as an argument); the server reads this one, which tests replace with a manual
//! clock they set and advance.

use std::sync::Arc;

use daojia_domain::Timestamp;
use tokio::sync::watch;

/// The server's clock: the system clock, or a manual one for tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` for the system clock. A manual clock is a watch channel: tests and simulations
    /// move it while the server shares it, and background tasks can wait for it to move.
    manual: Option<Arc<watch::Sender<Timestamp>>>,
}

impl Clock {
    /// The system clock (UTC).
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock showing `now` until it is [`set`](Clock::set); clones share the reading.
    pub fn manual(now: Timestamp) -> Self {
        Clock {
            manual: Some(Arc::new(watch::Sender::new(now))),
        }
    }

    /// Whether this is a manual clock (moved only by [`set`](Clock::set)).
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock to `now`; ignored by the system clock.
    pub fn set(&self, now: Timestamp) {
        if let Some(manual) = &self.manual {
            manual.send_replace(now);
        }
    }

    /// A receiver that sees every move of a manual clock; `None` for the system clock.
    pub fn changes(&self) -> Option<watch::Receiver<Timestamp>> {
        self.manual.as_ref().map(|m| m.subscribe())
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(manual) => *manual.borrow(),
            None => {
                let since_epoch = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Timestamp(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let clock = Clock::manual(Timestamp(1_000));
        let shared = clock.clone();
        clock.set(Timestamp(2_000));
        assert_eq!(shared.now(), Timestamp(2_000));
        assert!(Clock::system().now() > Timestamp(1_600_000_000_000));
    }

    #[test]
    fn a_manual_clock_reports_its_moves() {
        let clock = Clock::manual(Timestamp(1_000));
        let mut changes = clock.changes().unwrap();
        assert!(!changes.has_changed().unwrap());
        clock.set(Timestamp(5_000));
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), Timestamp(5_000));
        assert!(Clock::system().changes().is_none());
    }
}
