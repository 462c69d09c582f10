//! [`KurrentSubscription`]: a server-side catch-up subscription as a daojia
//! [`EventSubscription`].

use std::fmt;

use daojia_store::{EventSubscription, Position, Result, SubscriptionItem};
use kurrentdb::{Subscription, SubscriptionEvent};

use crate::convert;
use crate::errors::{Op, map};

/// A catch-up subscription of [`KurrentStore`](crate::KurrentStore): history, then
/// [`SubscriptionItem::CaughtUp`] once, then live events (and checkpoints on a filtered `$all`
/// subscription that asked for them).
pub struct KurrentSubscription {
    /// Boxed: the client's subscription is large, and moves with this value.
    inner: Box<Subscription>,
    /// The stream (or `$all`), for errors.
    target: String,
    /// Whether the server's checkpoints are passed on.
    checkpoints: bool,
    caught_up: bool,
    /// An item read while waiting for the server's confirmation.
    pending: Option<SubscriptionItem>,
}

impl fmt::Debug for KurrentSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KurrentSubscription")
            .field("target", &self.target)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

impl KurrentSubscription {
    /// Sends the subscription request and waits for the server to confirm it, so that an
    /// unusable subscription (a tombstoned stream, an unreachable server) fails here and a
    /// subscription from the end sees every event committed after this returns.
    pub(crate) async fn start(
        inner: Subscription,
        target: String,
        checkpoints: bool,
    ) -> Result<Self> {
        let mut sub = KurrentSubscription {
            inner: Box::new(inner),
            target,
            checkpoints,
            caught_up: false,
            pending: None,
        };
        loop {
            let event = sub
                .inner
                .next_subscription_event()
                .await
                .map_err(|e| map(Op::on(&sub.target), e))?;
            if let SubscriptionEvent::Confirmed(_) = event {
                return Ok(sub);
            }
            // A server that does not confirm first: keep what it sent.
            if let Some(item) = sub.item(event) {
                sub.pending = Some(item);
                return Ok(sub);
            }
        }
    }

    /// The item a server message stands for, if any.
    fn item(&mut self, event: SubscriptionEvent) -> Option<SubscriptionItem> {
        match event {
            SubscriptionEvent::EventAppeared(e) => Some(SubscriptionItem::Event(
                convert::recorded(e.get_original_event()),
            )),
            SubscriptionEvent::CaughtUp(_) if !self.caught_up => {
                self.caught_up = true;
                Some(SubscriptionItem::CaughtUp)
            }
            // The server's checkpoint is the last position it considered; daojia's is the
            // position below which everything was considered.
            SubscriptionEvent::Checkpoint(p) if self.checkpoints => Some(
                SubscriptionItem::Checkpoint(Position(p.commit.saturating_add(1))),
            ),
            _ => None,
        }
    }
}

impl EventSubscription for KurrentSubscription {
    async fn next(&mut self) -> Option<Result<SubscriptionItem>> {
        if let Some(item) = self.pending.take() {
            return Some(Ok(item));
        }
        loop {
            match self.inner.next_subscription_event().await {
                Ok(event) => {
                    if let Some(item) = self.item(event) {
                        return Some(Ok(item));
                    }
                }
                Err(kurrentdb::Error::ConnectionClosed) => return None,
                Err(e) => return Some(Err(map(Op::on(&self.target), e))),
            }
        }
    }
}
