//! A connection's writer task: the only code that writes its socket.
//!
//! It drains the connection's outbox — everything queued since its last wake-up goes out in one write,
//! rendered by the connection's front end — until the outbox closes (then it flushes and sends FIN) or
//! the socket fails or the outbox overflows (then it ends the connection).

use std::sync::Arc;

use futures::FutureExt;
use natter_proto::{ErrorCode, ServerFrame};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::frontend::Render;
use crate::outbox::{Next, Outbox, Outgoing};

/// Writes to one connection closer together than this are coalesced (see the writer's loop).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(1);

/// The writer task: drains the outbox into the socket until the outbox closes or the socket fails.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    outbox: Arc<Outbox>,
    mut front: Box<dyn Render>,
) {
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    let mut last_write: Option<tokio::time::Instant> = None;
    loop {
        match outbox.next(&mut batch).await {
            Next::Write => {
                // Under load (the last write was less than COALESCE ago), wait until COALESCE after it and
                // take what was queued meanwhile too: one write instead of several. A quiet connection's
                // messages go out at once.
                if let Some(at) = last_write.map(|t| t + COALESCE) {
                    if at > tokio::time::Instant::now() {
                        tokio::time::sleep_until(at).await;
                        outbox.take_more(&mut batch);
                    }
                }
                buf.clear();
                for item in batch.drain(..) {
                    front.render(&item, &mut buf);
                }
                let written = write.write_all(&buf);
                tokio::pin!(written);
                let written = tokio::select! {
                    written = &mut written => written,
                    // The peer stopped reading and the outbox filled up meanwhile: give up on it now.
                    // (The token also ends with the server, whose `bye` must still go out.)
                    _ = outbox.ended().cancelled() => {
                        if outbox.is_overflowed() {
                            break;
                        }
                        written.await
                    }
                };
                if written.is_err() {
                    break;
                }
                last_write = Some(tokio::time::Instant::now());
                // Give the buffers back after every write: most connections are idle most of the time,
                // and an allocation is cheap next to the write it serves.
                if buf.capacity() > 512 {
                    buf = Vec::new();
                }
                if batch.capacity() > 8 {
                    batch = Vec::new();
                }
            }
            Next::Overflowed => {
                // Best effort: if the socket has room for one more line, say why we are hanging up.
                let frame = ServerFrame::error(
                    ErrorCode::TooSlow,
                    "you are not reading; disconnecting",
                    None,
                );
                let mut last = Vec::new();
                front.render(&Outgoing::new(frame), &mut last);
                // Only if it goes at once: the peer is not reading, so waiting could take for ever.
                let _ = write.write_all(&last).now_or_never();
                break;
            }
            Next::Closed => {
                let _ = write.shutdown().await;
                break;
            }
        }
    }
    outbox.close();
    outbox.end();
}
