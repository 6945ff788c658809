//! The open connections and what each is doing: the cap on open connections (`--max-connections`),
//! the idle timeout and the header-read timeout.
//!
//! hyper's own header-read timer starts whenever a connection waits for a request, idle
//! keep-alive waits included, so it cannot tell a quiet client from a slow one. Here each
//! connection's [`Activity`] says which clock runs: none while a request is in flight (its body
//! has a deadline of its own, [`super::body_deadline`]), the header-read clock from the first
//! byte of a request (the first request's from the connection's start), else the idle clock
//! from the end of the last request.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::metrics::ListenerMetrics;

/// The open connections (`--max-connections`).
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    by_id: HashMap<u64, Arc<Activity>>,
    next_id: u64,
}

/// What a new connection gets at the cap.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Served; the connection idle the longest may have been shed to make room.
    Admitted(Admitted),
    /// Every open connection has a request in flight: closed at once.
    Refused,
}

/// An admitted connection: removed from [`Connections`] when dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    id: u64,
    pub(crate) activity: Arc<Activity>,
    connections: Arc<Connections>,
    metrics: Arc<ListenerMetrics>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.connections.open).by_id.remove(&self.id);
        self.metrics.connection_closed();
    }
}

impl Connections {
    /// Admits a new connection if fewer than `max` are open (not counting those being shed);
    /// at the cap, sheds the one with no request in flight that has been idle the longest.
    pub(crate) fn admit(self: &Arc<Self>, max: usize, metrics: &Arc<ListenerMetrics>) -> Admission {
        let mut open = lock(&self.open);
        let kept = open.by_id.values().filter(|a| !a.state().shed).count();
        if kept >= max {
            let oldest_idle = open
                .by_id
                .values()
                .filter_map(|activity| {
                    let state = activity.state();
                    (state.in_flight == 0 && !state.shed).then_some((state.idle_since, activity))
                })
                .min_by_key(|(idle_since, _)| *idle_since)
                .map(|(_, activity)| Arc::clone(activity));
            let Some(oldest_idle) = oldest_idle else {
                metrics.connection_refused();
                return Admission::Refused;
            };
            oldest_idle.update(|state| state.shed = true);
            metrics.connection_shed();
        }
        let id = open.next_id;
        open.next_id = open.next_id.wrapping_add(1);
        let activity = Arc::new(Activity::new());
        open.by_id.insert(id, Arc::clone(&activity));
        metrics.connection_opened();
        Admission::Admitted(Admitted {
            id,
            activity,
            connections: Arc::clone(self),
            metrics: Arc::clone(metrics),
        })
    }
}

/// One connection's state, shared by its task, its service and its socket.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    /// Wakes the connection's task when the state changes.
    changed: Notify,
}

#[derive(Clone, Copy, Debug)]
struct State {
    in_flight: usize,
    /// Since when no request has been in flight.
    idle_since: Instant,
    /// When the first byte of the next request arrived, once it has.
    reading_since: Option<Instant>,
    /// Closed to make room for a new connection.
    shed: bool,
}

/// What the connection's task waits for.
#[derive(Debug, Eq, PartialEq)]
pub(crate) enum Due {
    /// Close now: shed, or past its idle or header-read deadline.
    Close,
    /// Check again at this instant (or when woken).
    At(Instant),
    /// A request is in flight: only a wake-up changes that.
    Busy,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            // A new connection's first request is due within the header-read timeout.
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: now,
                reading_since: Some(now),
                shed: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> State {
        *lock(&self.state)
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut lock(&self.state));
        self.changed.notify_one();
    }

    /// Resolves when the state may have changed.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// What to wait for at `now` under these timeouts.
    pub(crate) fn due(&self, idle: Duration, header_read: Duration, now: Instant) -> Due {
        let state = self.state();
        let deadline = match state {
            State { shed: true, .. } => return Due::Close,
            State { in_flight: 1.., .. } => return Due::Busy,
            State {
                reading_since: Some(since),
                ..
            } => since.checked_add(header_read),
            State { idle_since, .. } => idle_since.checked_add(idle),
        };
        match deadline {
            Some(deadline) if deadline > now => Due::At(deadline),
            Some(_) => Due::Close,
            None => Due::Busy,
        }
    }

    /// Marks a request in flight until the guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.update(|state| {
            state.in_flight = state.in_flight.saturating_add(1);
            state.reading_since = None;
        });
        InFlight(Arc::clone(self))
    }

    /// Bytes arrived: with no request in flight, they begin the next one's headers.
    fn bytes_read(&self) {
        let mut state = lock(&self.state);
        if state.in_flight == 0 && state.reading_since.is_none() {
            state.reading_since = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }
}

/// A request in flight on a connection (see [`Activity::request`]).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
                state.reading_since = None;
            }
        });
    }
}

/// A connection's socket (or TLS stream) that tells its [`Activity`] when bytes arrive.
#[derive(Debug)]
pub(crate) struct Watched<I> {
    pub(crate) io: I,
    pub(crate) activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30);
    const HEADER: Duration = Duration::from_secs(2);

    #[test]
    fn the_clock_that_runs() {
        let activity = Arc::new(Activity::new());
        // The first request is due from the connection's start, its first byte or not.
        let start = activity.state().idle_since;
        assert_eq!(activity.due(IDLE, HEADER, start), Due::At(start + HEADER));
        activity.bytes_read();
        assert_eq!(activity.due(IDLE, HEADER, start + HEADER), Due::Close);
        let request = activity.request();
        // The body's bytes start no header clock.
        activity.bytes_read();
        assert_eq!(activity.due(IDLE, HEADER, start + IDLE), Due::Busy);
        drop(request);
        // Idle after a request: the idle clock, until the next request's first byte.
        let idle = activity.state().idle_since;
        assert_eq!(activity.due(IDLE, HEADER, idle), Due::At(idle + IDLE));
        assert_eq!(activity.due(IDLE, HEADER, idle + IDLE), Due::Close);
        activity.bytes_read();
        let reading = activity.state().reading_since.unwrap();
        assert_eq!(
            activity.due(IDLE, HEADER, reading),
            Due::At(reading + HEADER)
        );
    }

    #[test]
    fn at_the_cap_sheds_the_longest_idle_or_refuses() {
        let connections = Arc::new(Connections::default());
        let metrics = Arc::new(ListenerMetrics::default());
        let admit = || match connections.admit(2, &metrics) {
            Admission::Admitted(admitted) => Some(admitted),
            Admission::Refused => None,
        };
        let first = admit().unwrap();
        let second = admit().unwrap();
        let _busy = second.activity.request();
        // The first is idle: shed for the third.
        let third = admit().unwrap();
        assert_eq!(first.activity.due(IDLE, HEADER, Instant::now()), Due::Close);
        let _also_busy = third.activity.request();
        // Every connection kept is busy: refused.
        assert!(admit().is_none());
        drop(first);
        assert_eq!(lock(&connections.open).by_id.len(), 2);
        assert_eq!(metrics.counts(), (2, 1, 1));
    }
}
