//! Byte budgets for appends: what the EventStoreDB-protocol appends hold in memory between
//! receiving an event and answering for it.
//!
//! Every `Append` and `BatchAppend` call reserves the bytes of the events it has received
//! against one budget shared by all calls ([`AppendBudgets::total`]); a `BatchAppend` call
//! also against its own ([`AppendBudgets::per_call`]), so that one client cannot take the
//! whole. A reservation is given back when the append is answered (or the call ends). Past a
//! budget the append is refused with RESOURCE_EXHAUSTED and retry advice: nothing of it was
//! written, and retrying with the same event ids is safe.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tonic::Status;

use super::errors::MAX_APPEND_BYTES;

/// Bytes counted per event on top of its payload: its id, type, the vectors and maps
/// around it.
pub const EVENT_OVERHEAD: usize = 160;

/// How long a client is told to wait before retrying a refused append.
const RETRY_AFTER_MS: u64 = 200;

/// The append budgets of one server (`daojia serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendBudgets {
    /// Bytes of received, unanswered appends across all calls.
    pub total: usize,
    /// Bytes of received, unanswered batches on one `BatchAppend` call.
    pub per_call: usize,
}

impl Default for AppendBudgets {
    fn default() -> Self {
        AppendBudgets {
            total: 256 << 20,
            per_call: 64 << 20,
        }
    }
}

impl AppendBudgets {
    /// The budgets raised where needed so that one append of the largest allowed size fits.
    pub fn at_least_one_append(self) -> Self {
        let floor = MAX_APPEND_BYTES + (1 << 20);
        AppendBudgets {
            total: self.total.max(floor),
            per_call: self.per_call.max(floor),
        }
    }
}

/// One budget in bytes, shared by whoever reserves against it.
#[derive(Clone, Debug)]
pub struct ByteBudget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    used: AtomicUsize,
    limit: usize,
    /// What the budget covers, for the refusal's message.
    what: &'static str,
}

impl ByteBudget {
    /// A budget of `limit` bytes for `what` ("appends in flight on this server").
    pub fn new(limit: usize, what: &'static str) -> Self {
        ByteBudget(Arc::new(Inner {
            used: AtomicUsize::new(0),
            limit,
            what,
        }))
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    /// An empty reservation, to grow.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn take(&self, n: usize) -> Result<(), Status> {
        let inner = &self.0;
        let mut used = inner.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(n);
            if next > inner.limit {
                return Err(refused(inner.what, inner.limit));
            }
            match inner
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }
}

/// Bytes held against a [`ByteBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: ByteBudget,
    bytes: usize,
}

impl Reservation {
    /// Reserves `n` more bytes, or refuses with RESOURCE_EXHAUSTED (keeping what it had).
    pub fn grow(&mut self, n: usize) -> Result<(), Status> {
        self.budget.take(n)?;
        self.bytes += n;
        Ok(())
    }

    /// Gives everything back now.
    pub fn clear(&mut self) {
        self.budget.0.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.clear();
    }
}

fn refused(what: &str, limit: usize) -> Status {
    let mut status = crate::status::exhausted_retry_after(
        format!(
            "{what} hold their budget of {limit} bytes; this append was not written: retry it \
             (with the same event ids) after {RETRY_AFTER_MS} ms"
        ),
        std::time::Duration::from_millis(RETRY_AFTER_MS),
    );
    status.metadata_mut().insert(
        "budget-bytes",
        limit
            .to_string()
            .parse()
            .expect("digits are valid metadata"),
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stop_at_the_limit_and_give_back_on_drop() {
        let budget = ByteBudget::new(100, "appends in flight");
        let mut a = budget.reservation();
        a.grow(60).unwrap();
        let mut b = budget.reservation();
        let refused = b.grow(41).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().starts_with(
                "appends in flight hold their budget of 100 bytes; this append was not written"
            ),
            "{refused:?}"
        );
        assert_eq!(refused.metadata().get("budget-bytes").unwrap(), "100");
        b.grow(40).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.clear();
        assert_eq!(budget.used(), 0);
        b.grow(100).unwrap();
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
