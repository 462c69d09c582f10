//! [`Clock`]: where the command path gets `now`. The domain never reads a clock (`decide`
//! takes `now` as an argument); the server reads this one, which tests replace with a manual
//! clock they set and advance.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use daojia_domain::Timestamp;

/// The server's clock: the system clock, or a manual one for tests.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None` for the system clock. A manual clock is an atomic so that tests can move it
    /// while the server shares it, without a lock.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock (UTC).
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock showing `now` until it is [`set`](Clock::set); clones share the reading.
    pub fn manual(now: Timestamp) -> Self {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(now.0))),
        }
    }

    /// Moves a manual clock to `now`; ignored by the system clock.
    pub fn set(&self, now: Timestamp) {
        if let Some(manual) = &self.manual {
            manual.store(now.0, Ordering::Relaxed);
        }
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            Some(manual) => Timestamp(manual.load(Ordering::Relaxed)),
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
}
