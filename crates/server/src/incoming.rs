//! The listener's accept loop, in place of tonic's `TcpIncoming`:
//!
//! - **a connection cap**: each connection holds a permit of a semaphore of
//!   `--max-connections`, released when the server drops it; past the cap a new connection is
//!   closed as soon as it is accepted, and a warning says so (at most once per
//!   [`WARN_INTERVAL`], with the number refused meanwhile);
//! - **accept errors never spin**: running out of file descriptors or memory (EMFILE, ENFILE,
//!   ENOBUFS, ENOMEM, and any other error not about one connection) backs off, from 10 ms
//!   doubling to 1 s, and is logged at most once per [`WARN_INTERVAL`] ([`Backoff`]);
//! - **a handshake timeout**: a plaintext connection must send the HTTP/2 client preface and
//!   the first frame header ([`HANDSHAKE_BYTES`]) within `--handshake-timeout-ms`, or it is
//!   closed (slowloris); with TLS, tonic's TLS handshake timeout is set to the same value and
//!   the TLS ClientHello already passes this check;
//! - **an idle timeout**: a connection with no call in progress for `--idle-timeout` is
//!   closed. Calls mark their connection busy through [`ConnInfo`], which tonic puts in every
//!   request's extensions (the admission layer does it, [`crate::admission`]).
//!
//! The accept loop runs as its own task and hands connections over through a channel of one;
//! when tonic drops the stream (shutdown) the task ends and the listening socket closes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::config::TransportConfig;

/// How often at most each kind of accept-loop warning is logged.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The bytes a plaintext HTTP/2 client sends first: the 24-byte preface and the 9-byte header
/// of its SETTINGS frame. A connection that has not sent them within the handshake timeout is
/// closed.
pub const HANDSHAKE_BYTES: usize = 24 + 9;

/// The first back-off after an accept error.
pub const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest back-off after repeated accept errors.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Where connections come from: the TCP listener, or a test's source of errors.
pub trait Accept: Send + 'static {
    /// The connection type.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection and its peer's address, or why none could be accepted.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Small gRPC frames go out at once.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }
}

/// Whether an accept error is about the process (out of descriptors or memory: wait before
/// trying again) rather than about the one connection that failed (try the next at once).
pub fn backs_off(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The accept loop's back-off: [`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`], reset by a
/// successful accept.
#[derive(Debug, Default)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// The delay before the next attempt, and doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next.unwrap_or(BACKOFF_MIN);
        self.next = Some((delay * 2).min(BACKOFF_MAX));
        delay
    }

    /// After a successful accept.
    pub fn reset(&mut self) {
        self.next = None;
    }
}

/// A log line allowed at most once per interval; counts the occurrences it suppressed.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// At most once per `interval`.
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(occurrences suppressed since the last line)` if a line may be logged now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// What the accept loop did, for tests and the logs.
#[derive(Debug, Default)]
pub struct AcceptStats {
    /// Connections closed at once because the cap was reached.
    pub refused: std::sync::atomic::AtomicU64,
    /// Accept errors met.
    pub errors: std::sync::atomic::AtomicU64,
    /// Warnings logged (refusals and errors).
    pub warnings: std::sync::atomic::AtomicU64,
}

/// Accepts from `source` as [`run_accept_loop`] does and returns the stream of connections
/// tonic serves.
pub fn incoming<A: Accept>(
    source: A,
    config: &TransportConfig,
) -> ReceiverStream<Result<Conn<A::Io>, io::Error>> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(run_accept_loop(
        source,
        Arc::new(Semaphore::new(config.max_connections)),
        Timeouts::of(config),
        tx,
        Arc::new(AcceptStats::default()),
    ));
    ReceiverStream::new(rx)
}

/// A connection's deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// For the first [`HANDSHAKE_BYTES`].
    pub handshake: Duration,
    /// Without a call in progress.
    pub idle: Option<Duration>,
}

impl Timeouts {
    fn of(config: &TransportConfig) -> Timeouts {
        Timeouts {
            handshake: config.handshake_timeout,
            idle: config.idle_timeout,
        }
    }
}

/// The accept loop: accepts until `tx`'s receiver is dropped, hands on connections while
/// `permits` has one, closes the others at once, backs off on errors that are not about one
/// connection. Never yields an error, so tonic never sees one.
pub async fn run_accept_loop<A: Accept>(
    mut source: A,
    permits: Arc<Semaphore>,
    timeouts: Timeouts,
    tx: mpsc::Sender<Result<Conn<A::Io>, io::Error>>,
    stats: Arc<AcceptStats>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let cap = permits.available_permits();
    let mut backoff = Backoff::default();
    let mut refusals = RateLimit::new(WARN_INTERVAL);
    let mut failures = RateLimit::new(WARN_INTERVAL);
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = source.accept() => accepted,
        };
        match accepted {
            Ok((io, peer)) => {
                backoff.reset();
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let conn = Conn::new(io, peer, permit, timeouts);
                        if tx.send(Ok(conn)).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        drop(io);
                        stats.refused.fetch_add(1, Relaxed);
                        if let Some(also) = refusals.allow(Instant::now()) {
                            stats.warnings.fetch_add(1, Relaxed);
                            tracing::warn!(
                                max_connections = cap,
                                %peer,
                                refused_since_last_warning = also,
                                "connection limit reached: closing new connections \
                                 (--max-connections)"
                            );
                        }
                    }
                }
            }
            Err(error) if !backs_off(&error) => {
                tracing::debug!(%error, "a connection failed while being accepted");
            }
            Err(error) => {
                stats.errors.fetch_add(1, Relaxed);
                let delay = backoff.next_delay();
                if let Some(also) = failures.allow(Instant::now()) {
                    stats.warnings.fetch_add(1, Relaxed);
                    tracing::warn!(
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        errors_since_last_warning = also,
                        "cannot accept connections (out of file descriptors or memory?); \
                         backing off"
                    );
                }
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// What a connection's calls share with it: whether a call is in progress, and since when
/// none is.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
}

#[derive(Debug)]
struct ActivityState {
    calls: usize,
    idle_since: Instant,
}

/// The connection a request came on, in its extensions (tonic puts it there).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    activity: Arc<Activity>,
}

impl ConnInfo {
    /// Marks the connection busy until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.activity
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .calls += 1;
        Busy {
            activity: self.activity.clone(),
        }
    }
}

/// A call in progress on a connection (see [`ConnInfo::busy`]).
#[derive(Debug)]
pub struct Busy {
    activity: Arc<Activity>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self
            .activity
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.calls = state.calls.saturating_sub(1);
        if state.calls == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// An accepted connection: holds its permit of the connection cap and closes itself (its reads
/// fail with `TimedOut`) when its handshake or idle deadline passes.
#[derive(Debug)]
pub struct Conn<IO> {
    // Dropped first: the permit is free again by the time the peer sees the socket close.
    _permit: OwnedSemaphorePermit,
    io: IO,
    info: ConnInfo,
    timeouts: Timeouts,
    accepted: Instant,
    read: usize,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Conn<IO> {
    fn new(io: IO, peer: SocketAddr, permit: OwnedSemaphorePermit, timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Conn {
            _permit: permit,
            io,
            info: ConnInfo {
                peer,
                activity: Arc::new(Activity {
                    state: Mutex::new(ActivityState {
                        calls: 0,
                        idle_since: now,
                    }),
                }),
            },
            timeouts,
            accepted: now,
            read: 0,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.handshake)),
        }
    }

    /// The instant to look again at the connection, and whether it is then to be closed
    /// (`Some(why)`): `None` if it is never to be closed for being quiet.
    fn deadline(&self, now: Instant) -> Option<(Instant, Option<&'static str>)> {
        if self.read < HANDSHAKE_BYTES {
            return Some((self.accepted + self.timeouts.handshake, Some("handshake")));
        }
        let idle = self.timeouts.idle?;
        let state = self
            .info
            .activity
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if state.calls == 0 {
            Some((state.idle_since + idle, Some("idle")))
        } else {
            // A call is in progress: look again later.
            Some((now + idle, None))
        }
    }

    /// `Err(TimedOut)` once the connection's current deadline has passed; otherwise arms the
    /// timer for it.
    fn check_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let Some((at, why)) = self.deadline(now) else {
                return Ok(());
            };
            if at <= now
                && let Some(why) = why
            {
                tracing::debug!(peer = %self.info.peer, why, "closing a quiet connection");
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{why} timeout"),
                ));
            }
            self.timer
                .as_mut()
                .reset(at.max(now + Duration::from_millis(1)));
        }
        Ok(())
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() - before;
                self.read = self.read.saturating_add(got);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.check_deadline(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO> Connected for Conn<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::Ordering::Relaxed;

    use tokio::io::{AsyncReadExt, DuplexStream};

    use super::*;

    /// Accepts from a script: connections or errors, then errors forever; records when each
    /// accept was attempted.
    struct Scripted {
        script: VecDeque<io::Result<DuplexStream>>,
        attempts: Arc<Mutex<Vec<Instant>>>,
    }

    impl Accept for Scripted {
        type Io = DuplexStream;

        async fn accept(&mut self) -> io::Result<(DuplexStream, SocketAddr)> {
            self.attempts.lock().unwrap().push(Instant::now());
            let next = self
                .script
                .pop_front()
                .unwrap_or_else(|| Err(io::Error::from_raw_os_error(24))); // EMFILE
            next.map(|io| (io, SocketAddr::from(([127, 0, 0, 1], 1))))
        }
    }

    const TIMEOUTS: Timeouts = Timeouts {
        handshake: Duration::from_secs(3600),
        idle: None,
    };

    #[test]
    fn process_errors_back_off_and_per_connection_errors_do_not() {
        assert!(backs_off(&io::Error::from_raw_os_error(24))); // EMFILE
        assert!(backs_off(&io::Error::from_raw_os_error(23))); // ENFILE
        assert!(backs_off(&io::Error::from_raw_os_error(105))); // ENOBUFS
        assert!(backs_off(&io::Error::from_raw_os_error(12))); // ENOMEM
        assert!(!backs_off(&io::ErrorKind::ConnectionAborted.into()));
        assert!(!backs_off(&io::ErrorKind::ConnectionReset.into()));
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.next_delay().as_millis() as u64)
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn a_rate_limited_line_is_allowed_once_per_interval_and_counts_the_rest() {
        let start = Instant::now();
        let mut limit = RateLimit::new(Duration::from_secs(10));
        assert_eq!(limit.allow(start), Some(0));
        assert_eq!(limit.allow(start + Duration::from_secs(1)), None);
        assert_eq!(limit.allow(start + Duration::from_secs(9)), None);
        assert_eq!(limit.allow(start + Duration::from_secs(10)), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn running_out_of_descriptors_backs_off_instead_of_spinning_and_warns_once_per_interval()
    {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let source = Scripted {
            script: VecDeque::new(),
            attempts: attempts.clone(),
        };
        let (tx, rx) = mpsc::channel(1);
        let stats = Arc::new(AcceptStats::default());
        let task = tokio::spawn(run_accept_loop(
            source,
            Arc::new(Semaphore::new(10)),
            TIMEOUTS,
            tx,
            stats.clone(),
        ));
        // 25 s of virtual time with accept failing every time.
        tokio::time::sleep(Duration::from_secs(25)).await;
        let times = attempts.lock().unwrap().clone();
        let gaps: Vec<u64> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() as u64)
            .collect();
        assert_eq!(gaps[..8], [10, 20, 40, 80, 160, 320, 640, 1000]);
        assert!(gaps[8..].iter().all(|&g| g == 1000), "{gaps:?}");
        // Bounded attempts (no spin): about one a second once backed off.
        assert!(times.len() < 40, "{} attempts", times.len());
        // One warning at the start, then one per 10 s: at 0, 10 and 20 s.
        assert_eq!(stats.warnings.load(Relaxed), 3);
        assert_eq!(stats.errors.load(Relaxed), times.len() as u64);
        // Dropping the stream (shutdown) ends the loop.
        drop(rx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_cap_a_connection_is_closed_at_once_and_a_freed_permit_admits_the_next() {
        let (kept_server, _kept_client) = tokio::io::duplex(64);
        let (refused_server, mut refused_client) = tokio::io::duplex(64);
        let source = Scripted {
            script: VecDeque::from([Ok(kept_server), Ok(refused_server)]),
            attempts: Arc::new(Mutex::new(Vec::new())),
        };
        let permits = Arc::new(Semaphore::new(1));
        let (tx, mut rx) = mpsc::channel(1);
        let stats = Arc::new(AcceptStats::default());
        let task = tokio::spawn(run_accept_loop(
            source,
            permits.clone(),
            TIMEOUTS,
            tx,
            stats.clone(),
        ));
        let kept = rx.recv().await.unwrap().unwrap();
        // The second connection is closed by the server: its peer reads end-of-file.
        let mut buf = [0u8; 1];
        assert_eq!(refused_client.read(&mut buf).await.unwrap(), 0);
        assert_eq!(stats.refused.load(Relaxed), 1);
        assert_eq!(permits.available_permits(), 0);
        drop(kept);
        assert_eq!(permits.available_permits(), 1);
        drop(rx);
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
        let (server, client) = tokio::io::duplex(64);
        let permits = Arc::new(Semaphore::new(1));
        let permit = permits.clone().try_acquire_owned().unwrap();
        let timeouts = Timeouts {
            handshake: Duration::from_millis(200),
            idle: Some(Duration::from_secs(1)),
        };
        let mut conn = Conn::new(
            server,
            SocketAddr::from(([127, 0, 0, 1], 1)),
            permit,
            timeouts,
        );
        let started = Instant::now();
        let mut buf = [0u8; 8];
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_millis(200));

        // After the handshake bytes, a connection with a call in progress stays open; once
        // the call ends, it closes after the idle timeout.
        let (server, mut client2) = tokio::io::duplex(64);
        let permit = permits.clone();
        drop(conn);
        let permit = permit.try_acquire_owned().unwrap();
        let mut conn = Conn::new(
            server,
            SocketAddr::from(([127, 0, 0, 1], 1)),
            permit,
            timeouts,
        );
        use tokio::io::AsyncWriteExt;
        client2.write_all(&[0u8; HANDSHAKE_BYTES]).await.unwrap();
        let mut got = [0u8; HANDSHAKE_BYTES];
        conn.read_exact(&mut got).await.unwrap();
        let busy = conn.info.busy();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        assert!(read.is_err(), "a busy connection must stay open");
        drop(busy);
        let idle_from = Instant::now();
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(idle_from.elapsed(), Duration::from_secs(1));
        drop(client);
    }
}
