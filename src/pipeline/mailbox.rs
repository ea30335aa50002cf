//! The hand-over from the source thread to the main loop: messages in order, where a camera frame
//! that arrives while the previous one is still waiting replaces it (the oldest is dropped and
//! counted), so a pipeline slower than its camera never builds lag. Files and pipes are never dropped:
//! their reader waits for a free buffer instead.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::frame::GrayFrame;

/// What the source thread tells the main loop.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A frame and when the source handed it over.
    Frame(GrayFrame, Instant),
    /// A finite source ended.
    End,
    /// A corrupt frame was skipped.
    BadFrame(String),
    /// A camera was lost (reopened with backoff).
    Lost(String),
    /// A reopen attempt failed.
    Waiting(String),
    /// The camera is back.
    Back,
    /// A finite source broke.
    Failed(crate::source::SourceError),
}

/// The other side has gone: the source thread ended, or the main loop stopped listening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Msg>,
    sender_gone: bool,
    receiver_gone: bool,
    dropped: u64,
}

/// A queue of [`Msg`] shared by one sender and one receiver.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    ready: Condvar,
}

impl Mailbox {
    /// A mailbox with room for `capacity` messages before it allocates.
    pub(crate) fn with_capacity(capacity: usize) -> Mailbox {
        Mailbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::with_capacity(capacity),
                ..Inner::default()
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves the queue consistent (every change is one call).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` at the back.
    pub(crate) fn post(&self, msg: Msg) -> Result<(), Closed> {
        let mut inner = self.lock();
        if inner.receiver_gone {
            return Err(Closed);
        }
        inner.queue.push_back(msg);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a live frame; when a frame is already waiting at the back it is replaced, counted as
    /// dropped, and its buffer handed back for the next read.
    pub(crate) fn post_latest(
        &self,
        frame: GrayFrame,
        at: Instant,
    ) -> Result<Option<GrayFrame>, Closed> {
        let mut inner = self.lock();
        if inner.receiver_gone {
            return Err(Closed);
        }
        let old = match inner.queue.back_mut() {
            Some(Msg::Frame(waiting, when)) => {
                *when = at;
                Some(std::mem::replace(waiting, frame))
            }
            _ => {
                inner.queue.push_back(Msg::Frame(frame, at));
                None
            }
        };
        if old.is_some() {
            inner.dropped += 1;
        }
        self.ready.notify_one();
        Ok(old)
    }

    /// The next message, waiting at most `timeout`; `Ok(None)` on timeout, `Err` once the sender has
    /// gone and the queue is empty.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<Option<Msg>, Closed> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if let Some(m) = inner.queue.pop_front() {
                return Ok(Some(m));
            }
            if inner.sender_gone {
                return Err(Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            inner = self
                .ready
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Frames replaced before the main loop took them.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The sender is done (its thread is ending).
    pub(crate) fn close_sender(&self) {
        self.lock().sender_gone = true;
        self.ready.notify_all();
    }

    /// The receiver is done; further posts fail so the sender stops, and queued frames are freed.
    pub(crate) fn close_receiver(&self) {
        let mut inner = self.lock();
        inner.receiver_gone = true;
        inner.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: u8) -> GrayFrame {
        GrayFrame::filled(2, 2, v)
    }

    fn value(m: Option<Msg>) -> u8 {
        match m {
            Some(Msg::Frame(f, _)) => f.get(0, 0),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn a_newer_live_frame_replaces_the_waiting_one() {
        let mb = Mailbox::with_capacity(4);
        let t = Instant::now();
        assert!(mb.post_latest(frame(1), t).unwrap().is_none());
        let old = mb
            .post_latest(frame(2), t)
            .unwrap()
            .expect("the old buffer back");
        assert_eq!(old.get(0, 0), 1);
        assert_eq!(mb.dropped(), 1);
        assert_eq!(value(mb.recv_timeout(Duration::ZERO).unwrap()), 2);
        assert!(mb.recv_timeout(Duration::ZERO).unwrap().is_none());
    }

    #[test]
    fn messages_keep_their_order_and_are_never_replaced() {
        let mb = Mailbox::with_capacity(4);
        let t = Instant::now();
        mb.post_latest(frame(1), t).unwrap();
        mb.post(Msg::Back).unwrap();
        assert!(mb.post_latest(frame(2), t).unwrap().is_none());
        assert_eq!(value(mb.recv_timeout(Duration::ZERO).unwrap()), 1);
        assert!(matches!(
            mb.recv_timeout(Duration::ZERO),
            Ok(Some(Msg::Back))
        ));
        assert_eq!(value(mb.recv_timeout(Duration::ZERO).unwrap()), 2);
        assert_eq!(mb.dropped(), 0);
    }

    #[test]
    fn closing_either_side_is_seen() {
        let mb = Mailbox::with_capacity(1);
        mb.post(Msg::End).unwrap();
        mb.close_sender();
        assert!(matches!(
            mb.recv_timeout(Duration::ZERO),
            Ok(Some(Msg::End))
        ));
        assert_eq!(mb.recv_timeout(Duration::from_secs(5)).unwrap_err(), Closed);
        let mb = Mailbox::with_capacity(1);
        mb.close_receiver();
        assert_eq!(mb.post(Msg::Back).unwrap_err(), Closed);
        assert!(mb.post_latest(frame(0), Instant::now()).is_err());
    }
}
