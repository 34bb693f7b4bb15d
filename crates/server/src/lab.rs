//! The lab's own client (`natter serve --lab ADDR`): the Windows console program natter grew from.
//!
//! Its protocol has no framing (PROTOCOL.md §10): the client sends its name with no newline, then each
//! message as two `send()`s — a timestamp (`YYYY-MM-DD HH:MM:SS`, perhaps bracketed) and the text (at
//! most 255 bytes) — and `exit_request` to leave; the server sends each message of another user as one
//! `send()`: `Server: [ 2023-10-20 15:21:46 ] Received message from client: f message: er`. TCP may
//! split or glue those sends, so pieces are told apart by what they look like and when they come:
//! * a timestamp is recognised by its shape, wherever it is: it ends the text before it;
//! * a text (or, first, the name) ends at the next timestamp, or when the line has been quiet for
//!   [`QUIET`] (the lab client sends nothing more until its user presses Enter again).
//!
//! Text in GBK (Chinese Windows consoles) is decoded, and a connection that has sent GBK is answered in
//! GBK; otherwise UTF-8 both ways.
//!
//! The lab connection is bridged to an ordinary session, as the browser's WebSocket is: what the lab
//! client sends becomes `hello`/`say`/`exit` lines of PROTOCOL.md, and the session's frames become the
//! lab's lines. The lab user is in the lobby and sees the lobby's messages and their private messages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_proto::{ClientFrame, ServerFrame};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::session::Shared;

/// How long the line must be quiet before a name or a text without a following timestamp counts as
/// complete: longer than Windows' delayed ACK (200 ms), which can hold a text sent right after its
/// timestamp back that long.
pub const QUIET: Duration = Duration::from_millis(400);

/// Most bytes buffered without a timestamp or a pause: beyond this they are taken as a text anyway (a
/// flood is then the session's flood control's business).
const MAX_BUFFERED: usize = 16 * 1024;

/// The lab's exit request (and its confirmation).
const EXIT: &str = "exit_request";

/// What the lab client said, one piece at a time.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Name(Vec<u8>),
    Text(Vec<u8>),
    Exit,
}

/// Tells the lab client's pieces apart in the bytes as they arrive.
#[derive(Default)]
pub struct Segmenter {
    buf: Vec<u8>,
    named: bool,
}

impl Segmenter {
    /// Takes bytes as they arrived; returns the pieces a timestamp completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((start, end)) = find_timestamp(&self.buf) {
            let before: Vec<u8> = self.buf[..start].to_vec();
            self.buf.drain(..end);
            self.complete(before, &mut out);
        }
        if self.buf.len() > MAX_BUFFERED {
            let all = std::mem::take(&mut self.buf);
            self.complete(all, &mut out);
        }
        out
    }

    /// The line has been quiet for [`QUIET`]: what is buffered is complete.
    pub fn quiet(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        let all = std::mem::take(&mut self.buf);
        self.complete(all, &mut out);
        out
    }

    /// Whether bytes wait for a timestamp or a pause.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn complete(&mut self, bytes: Vec<u8>, out: &mut Vec<Piece>) {
        // The lab's buffers are C strings: NULs and line ends around them are not text.
        let trimmed = trim(&bytes);
        if trimmed.is_empty() {
            return;
        }
        if !self.named {
            self.named = true;
            out.push(Piece::Name(trimmed.to_vec()));
        } else if trimmed == EXIT.as_bytes() {
            out.push(Piece::Exit);
        } else {
            out.push(Piece::Text(trimmed.to_vec()));
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let junk = |b: &u8| matches!(b, 0 | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !junk(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !junk(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Where the first timestamp in `buf` is, with the brackets and spaces around it: `(start, end)`.
fn find_timestamp(buf: &[u8]) -> Option<(usize, usize)> {
    // YYYY-MM-DD HH:MM:SS
    const SHAPE: &[u8; 19] = b"dddd-dd-dd dd:dd:dd";
    let fits = |at: usize| {
        buf.get(at..at + SHAPE.len()).is_some_and(|window| {
            window.iter().zip(SHAPE).all(|(b, s)| match s {
                b'd' => b.is_ascii_digit(),
                s => b == s,
            })
        })
    };
    let at = (0..buf.len()).find(|&i| fits(i))?;
    let mut start = at;
    while start > 0 && buf[start - 1] == b' ' {
        start -= 1;
    }
    if start > 0 && buf[start - 1] == b'[' {
        start -= 1;
    }
    let mut end = at + SHAPE.len();
    while buf.get(end) == Some(&b' ') {
        end += 1;
    }
    if buf.get(end) == Some(&b']') {
        end += 1;
    }
    Some((start, end))
}

/// Text from the lab client: UTF-8 if it is, else GBK (noted in `gbk`, so answers are GBK too).
fn decode(bytes: &[u8], gbk: &AtomicBool) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            gbk.store(true, Ordering::Relaxed);
            encoding_rs::GBK
                .decode_without_bom_handling(bytes)
                .0
                .into_owned()
        }
    }
}

/// One message as the lab's server sent it.
pub fn render(ts: &str, from: &str, text: &str) -> String {
    format!(
        "Server: [ {} ] Received message from client: {from} message: {text}",
        natter_proto::time::local_display_wire(ts)
    )
}

/// Serves one lab client until it leaves.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    admission: crate::Admission,
) {
    tracing::info!("lab connection from {peer}");
    let (session_side, bridge_side) = tokio::io::duplex(64 * 1024);
    let (from_session, mut to_session) = tokio::io::split(bridge_side);
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let gbk = Arc::new(AtomicBool::new(false));
    let exiting = Arc::new(AtomicBool::new(false));
    // Pongs for the session's idle pings go the same way as the client's lines.
    let (pongs, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<bytes::Bytes>();

    let inbound = {
        let gbk = gbk.clone();
        let exiting = exiting.clone();
        async move {
            let mut segments = Segmenter::default();
            let mut chunk = vec![0u8; 4096];
            let mut last = Instant::now();
            loop {
                let quiet_at = last + QUIET;
                let pieces = tokio::select! {
                    read = tcp_read.read(&mut chunk) => match read {
                        Ok(0) | Err(_) => {
                            let pieces = segments.quiet();
                            send_pieces(pieces, &mut to_session, &gbk, &exiting).await;
                            break;
                        }
                        Ok(n) => {
                            last = Instant::now();
                            segments.push(&chunk[..n])
                        }
                    },
                    _ = tokio::time::sleep_until(quiet_at.into()), if !segments.is_empty() => {
                        segments.quiet()
                    }
                    Some(pong) = pong_rx.recv() => {
                        if to_session.write_all(&pong).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                if !send_pieces(pieces, &mut to_session, &gbk, &exiting).await {
                    break;
                }
            }
            let _ = to_session.shutdown().await;
        }
    };
    let outbound = {
        let lang = shared.config().lang;
        async move {
            let mut lines = tokio::io::BufReader::new(from_session);
            let mut line = String::new();
            let mut me: Option<String> = None;
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let Ok(frame) = serde_json::from_str::<ServerFrame>(line.trim_end()) else {
                    continue;
                };
                let text = match frame {
                    ServerFrame::Welcome { name, .. } => {
                        me = Some(name);
                        continue;
                    }
                    ServerFrame::Message(m) if Some(&m.from) != me.as_ref() => {
                        render(&m.ts, &m.from, &m.text)
                    }
                    ServerFrame::Ping { id } => {
                        let _ = pongs.send(ClientFrame::Pong { id }.encode());
                        continue;
                    }
                    // The exit request is confirmed by echoing it, as the lab's server did.
                    ServerFrame::Bye { .. } if exiting.load(Ordering::Relaxed) => EXIT.to_owned(),
                    ServerFrame::Bye { .. } => break,
                    ServerFrame::Error {
                        code,
                        args,
                        message,
                        ..
                    } => {
                        let text = natter_proto::frame::error_text(lang, code, &args, &message);
                        format!("Server: {text}")
                    }
                    _ => continue,
                };
                let bytes = if gbk.load(Ordering::Relaxed) {
                    encoding_rs::GBK.encode(&text).0.into_owned()
                } else {
                    text.into_bytes()
                };
                // One send per message, no newline: what the lab's client reads with one recv().
                if tcp_write.write_all(&bytes).await.is_err() {
                    break;
                }
                if bytes == EXIT.as_bytes() {
                    break;
                }
            }
            let _ = tcp_write.shutdown().await;
        }
    };
    let session = crate::session::serve_stream(
        crate::transport::Stream(session_side),
        peer,
        shared,
        shutdown,
        Instant::now(),
        (false, crate::session::Kind::Chat),
        admission,
    );
    tokio::join!(inbound, outbound, session);
}

/// Hands pieces to the session as protocol lines. `false`: the session is gone.
async fn send_pieces(
    pieces: Vec<Piece>,
    to_session: &mut tokio::io::WriteHalf<tokio::io::DuplexStream>,
    gbk: &AtomicBool,
    exiting: &AtomicBool,
) -> bool {
    for piece in pieces {
        let frame = match piece {
            Piece::Name(name) => ClientFrame::Hello {
                name: decode(&name, gbk).trim().to_owned(),
                version: natter_proto::VERSION,
                resume_after: None,
                lobby: true,
                rooms: false,
                key: None,
                password: None,
            },
            Piece::Text(text) => ClientFrame::Say {
                tags: Default::default(),
                notice: false,
                text: decode(&text, gbk),
                room: None,
                id: None,
            },
            Piece::Exit => {
                exiting.store(true, Ordering::Relaxed);
                ClientFrame::Exit { text: None }
            }
        };
        if to_session.write_all(&frame.encode()).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(seg: &mut Segmenter, chunks: &[&[u8]]) -> Vec<Piece> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(seg.push(c));
        }
        out.extend(seg.quiet());
        out
    }

    #[test]
    fn timestamps_separate_texts_however_the_bytes_come() {
        let mut seg = Segmenter::default();
        // The name alone, then a pause.
        assert_eq!(seg.push(b"alice"), vec![]);
        assert_eq!(seg.quiet(), vec![Piece::Name(b"alice".to_vec())]);
        // Glued: two messages in one read, bracketed timestamps as in the report's output.
        let pieces = all(
            &mut seg,
            &[b"[ 2023-10-20 15:21:46 ]hello2023-10-20 15:21:47world"],
        );
        assert_eq!(
            pieces,
            vec![
                Piece::Text(b"hello".to_vec()),
                Piece::Text(b"world".to_vec())
            ]
        );
        // Split: a timestamp cut in the middle, the text in two reads.
        let pieces = all(&mut seg, &[b"2023-10-", b"20 15:21:48", b"he", b"llo\0"]);
        assert_eq!(pieces, vec![Piece::Text(b"hello".to_vec())]);
        assert_eq!(
            all(&mut seg, &[b"2023-10-20 15:21:49exit_request"]),
            vec![Piece::Exit]
        );
    }

    #[test]
    fn a_name_glued_to_its_first_message_is_still_the_name() {
        let mut seg = Segmenter::default();
        let pieces = all(&mut seg, &[b"bob2023-10-20 15:21:46hi"]);
        assert_eq!(
            pieces,
            vec![Piece::Name(b"bob".to_vec()), Piece::Text(b"hi".to_vec())]
        );
    }

    proptest! {
        /// Whatever the cuts, messages sent as the lab client sends them come out whole and in order.
        #[test]
        fn any_cuts_give_the_same_messages(
            texts in prop::collection::vec("[a-z张三 ]{1,40}", 1..6),
            cuts in prop::collection::vec(1usize..30, 0..20),
        ) {
            let mut wire = b"carol".to_vec();
            let texts: Vec<String> = texts.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
            let mut stream = Vec::new();
            for t in &texts {
                stream.extend_from_slice(b"2026-11-27 10:00:00");
                stream.extend_from_slice(t.as_bytes());
            }
            let mut seg = Segmenter::default();
            let mut out = seg.push(&wire);
            out.extend(seg.quiet());
            wire.clear();
            let mut rest = &stream[..];
            for cut in cuts {
                let n = cut.min(rest.len());
                out.extend(seg.push(&rest[..n]));
                rest = &rest[n..];
            }
            out.extend(seg.push(rest));
            out.extend(seg.quiet());
            let mut expected = vec![Piece::Name(b"carol".to_vec())];
            expected.extend(texts.iter().map(|t| Piece::Text(t.as_bytes().to_vec())));
            prop_assert_eq!(out, expected);
        }
    }

    #[test]
    fn gbk_is_decoded_and_remembered() {
        let gbk = AtomicBool::new(false);
        assert_eq!(decode("你好".as_bytes(), &gbk), "你好");
        assert!(!gbk.load(Ordering::Relaxed));
        let (bytes, _, _) = encoding_rs::GBK.encode("你好");
        assert_eq!(decode(&bytes, &gbk), "你好");
        assert!(gbk.load(Ordering::Relaxed));
    }
}
