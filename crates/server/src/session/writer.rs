//! A connection's writing side: the only code that writes its socket.
//!
//! The [`Wire`] belongs to the connection's one task, which drives it beside reading ([`Wire::step`] is a
//! branch of the same `select!`), so an idle connection is one task, not two. It drains the connection's
//! outbox — everything queued since the last step goes out in as few writes as the socket takes, rendered
//! by the connection's front end — until the outbox closes (then it sends FIN) or the socket fails or the
//! outbox overflows (then the connection ends). Under load (the previous write finished less than
//! [`COALESCE`] ago) it waits out the rest of that interval first, so a busy connection gets at most about
//! a thousand writes a second: the kernel's per-write cost was most of the server's CPU.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use natter_proto::{ErrorCode, ServerFrame};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::frontend::{native::Native, Render};
use crate::outbox::{Next, Outbox, Outgoing};

/// Writes to one connection closer together than this are coalesced.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

/// The connection's write half and what is on its way into it.
pub(super) struct Wire<W> {
    write: W,
    /// How items are shown, once the first line has picked the front end (JSON until then).
    front: Option<Box<dyn Render>>,
    /// Rendered bytes not yet written, from `pos`.
    buf: Vec<u8>,
    pos: usize,
    batch: Vec<Arc<Outgoing>>,
    last_write: Option<Instant>,
    done: bool,
}

impl<W: AsyncWrite + Unpin> Wire<W> {
    pub(super) fn new(write: W) -> Self {
        Self {
            write,
            front: None,
            buf: Vec::new(),
            pos: 0,
            batch: Vec::new(),
            last_write: None,
            done: false,
        }
    }

    /// The write half, for a connection that stops being a chat session (a file transfer).
    pub(super) fn into_inner(self) -> W {
        self.write
    }

    /// The first line has picked the front end: from now on items are shown its way.
    pub(super) fn set_renderer(&mut self, front: Box<dyn Render>) {
        self.front = Some(front);
    }

    pub(super) fn is_done(&self) -> bool {
        self.done
    }

    /// Writes whatever the outbox gets, as it gets it, and completes only when the connection's writing
    /// is over (closed, failed or overflowed: [`Wire::is_done`]); after that it never completes. Cancel-safe: a step dropped
    /// while waiting loses nothing.
    pub(super) async fn step(&mut self, outbox: &Outbox) {
        if self.done {
            return std::future::pending().await;
        }
        // One loop, not a return through the connection's `select!` after every write: a busy
        // connection's writes then cost no rebuilt select and no re-armed timers.
        loop {
            if self.pos < self.buf.len() && outbox.is_overflowed() {
                // Cut off: what was rendered for a client that stopped reading is dropped with it.
                self.buf.clear();
                self.pos = 0;
            }
            if self.pos < self.buf.len() {
                match self.write.write(&self.buf[self.pos..]).await {
                    Ok(0) | Err(_) => {
                        self.done = true;
                        return;
                    }
                    Ok(n) => {
                        if let Some(m) = crate::metrics::counting() {
                            m.bytes_out.inc_by(n as u64);
                        }
                        self.pos += n;
                        if self.pos == self.buf.len() {
                            self.pos = 0;
                            self.buf.clear();
                            // Give the buffer back: most connections are idle most of the time.
                            if self.buf.capacity() > 512 {
                                self.buf = Vec::new();
                            }
                            self.last_write = Some(Instant::now());
                        }
                    }
                }
                continue;
            }
            if let Some(at) = self.last_write.map(|t| t + COALESCE) {
                if at > Instant::now() {
                    // Boxed: only a busy connection waits here, and the timer would otherwise be part
                    // of every idle connection's state.
                    Box::pin(tokio::time::sleep_until(at.into())).await;
                }
            }
            match outbox.next(&mut self.batch).await {
                Next::Write => {
                    for item in self.batch.drain(..) {
                        render(&mut self.front, &item, &mut self.buf);
                    }
                    if self.batch.capacity() > 8 {
                        self.batch = Vec::new();
                    }
                }
                Next::Overflowed => {
                    // Best effort: if the socket has room for one more line, say why we are hanging up.
                    let frame =
                        ServerFrame::error(ErrorCode::TooSlow, natter_proto::error_args!(), None);
                    let mut last = Vec::new();
                    render(&mut self.front, &Outgoing::new(frame), &mut last);
                    let _ = self.write.write_all(&last).now_or_never();
                    self.done = true;
                    return;
                }
                Next::Closed => {
                    let _ = self.write.shutdown().await;
                    self.done = true;
                    return;
                }
            }
        }
    }
}

/// Renders with the front end's renderer once the first line has picked it; as JSON before.
fn render(front: &mut Option<Box<dyn Render>>, item: &Outgoing, out: &mut Vec<u8>) {
    match front {
        Some(front) => front.render(item, out),
        None => Native.render(item, out),
    }
}
