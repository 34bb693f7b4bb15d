//! Newline framing with a hard length limit.
//!
//! [`FrameCodec`] is a `tokio_util::codec::Decoder` whose item is itself a `Result`: a frame that is too
//! long is reported as `Ok(Some(Err(FrameError::TooLarge)))`, a *value*, because `FramedRead` ends the
//! stream after the decoder returns `Err`. Only real I/O errors end a connection.
//!
//! * `\n` ends a frame; a `\r` just before it is dropped, so `\r\n` works too (telnet).
//! * A frame longer than the limit is reported as soon as it is detected and then skipped up to its
//!   newline without being buffered: memory stays bounded by the limit whatever the peer sends.
//! * At end of stream an unterminated fragment is discarded, never handed out as a frame: a frame cut
//!   short by a dying client must not be processed.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// A framing problem, reported in-band.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame longer than {limit} bytes")]
    TooLarge { limit: usize },
}

/// Splits a byte stream into newline-terminated frames of at most `max` bytes each.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Largest frame accepted, excluding the line ending.
    max: usize,
    /// Where to resume the newline search, so a slowly arriving frame is scanned once, not quadratically.
    scanned: usize,
    /// True while skipping the rest of an oversized frame.
    discarding: bool,
}

impl FrameCodec {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            scanned: 0,
            discarding: false,
        }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(crate::DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Result<Bytes, FrameError>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        loop {
            if self.discarding {
                match memchr(buf) {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                }
            }
            // A frame of `max` bytes may be followed by "\r\n", so look at most max + 2 bytes in.
            let window = buf.len().min(self.max + 2);
            let found = memchr(&buf[self.scanned.min(window)..window])
                .map(|i| i + self.scanned.min(window));
            match found {
                Some(i) => {
                    self.scanned = 0;
                    let mut line = buf.split_to(i + 1);
                    line.truncate(i);
                    if line.last() == Some(&b'\r') {
                        line.truncate(i - 1);
                    }
                    if line.len() > self.max {
                        return Ok(Some(Err(FrameError::TooLarge { limit: self.max })));
                    }
                    return Ok(Some(Ok(line.freeze())));
                }
                None if buf.len() > self.max + 1 => {
                    // Too long and still no newline: report now, skip the rest (which may already be
                    // in `buf`, followed by good frames) on the next call.
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Err(FrameError::TooLarge { limit: self.max })));
                }
                None => {
                    self.scanned = window;
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None => {
                // An unterminated fragment at EOF is not a frame: drop it.
                buf.clear();
                self.scanned = 0;
                self.discarding = false;
                Ok(None)
            }
        }
    }
}

fn memchr(buf: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed(codec: &mut FrameCodec, chunks: &[&[u8]], eof: bool) -> Vec<Result<Bytes, FrameError>> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                out.push(item);
            }
        }
        if eof {
            while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
                out.push(item);
            }
        }
        out
    }

    fn ok(s: &str) -> Result<Bytes, FrameError> {
        Ok(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn splits_glued_frames_and_joins_split_ones() {
        let mut c = FrameCodec::new(100);
        assert_eq!(
            feed(&mut c, &[b"a\nb", b"c\r\nd", b"\n"], false),
            vec![ok("a"), ok("bc"), ok("d")]
        );
    }

    #[test]
    fn drops_unterminated_fragment_at_eof() {
        let mut c = FrameCodec::new(100);
        assert_eq!(feed(&mut c, &[b"one\ntwo-cut-sh"], true), vec![ok("one")]);
    }

    #[test]
    fn exact_limit_is_accepted_with_either_line_ending() {
        let mut c = FrameCodec::new(4);
        assert_eq!(
            feed(&mut c, &[b"abcd\nabcd\r\n"], false),
            vec![ok("abcd"), ok("abcd")]
        );
    }

    #[test]
    fn oversized_frame_is_reported_once_and_skipped() {
        let mut c = FrameCodec::new(4);
        let out = feed(&mut c, &[b"abcdefgh", b"ijkl", b"mn\nok\n"], false);
        assert_eq!(out, vec![Err(FrameError::TooLarge { limit: 4 }), ok("ok")]);
    }

    #[test]
    fn oversized_frame_in_one_chunk() {
        let mut c = FrameCodec::new(4);
        let out = feed(&mut c, &[b"abcde\nok\n"], false);
        assert_eq!(out, vec![Err(FrameError::TooLarge { limit: 4 }), ok("ok")]);
    }

    #[test]
    fn frames_after_an_oversized_one_in_the_same_chunk_survive() {
        let mut c = FrameCodec::new(4);
        let out = feed(&mut c, &[b"abcdefghijklmnop\nok\nyes\n"], false);
        assert_eq!(
            out,
            vec![Err(FrameError::TooLarge { limit: 4 }), ok("ok"), ok("yes")]
        );
    }

    #[test]
    fn skipping_does_not_buffer() {
        let mut c = FrameCodec::new(16);
        let mut buf = BytesMut::new();
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'x'; 1024]);
            let _ = c.decode(&mut buf).unwrap();
            assert!(buf.len() <= 1024 + 18, "buffer grew to {}", buf.len());
        }
    }

    proptest! {
        /// However the bytes are split into reads, the same frames come out.
        #[test]
        fn any_split_gives_the_same_frames(
            lines in prop::collection::vec("[^\n\r]{0,40}", 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut wire = Vec::new();
            for l in &lines {
                wire.extend_from_slice(l.as_bytes());
                wire.push(b'\n');
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&wire[prev..p]);
                prev = p;
            }
            chunks.push(&wire[prev..]);
            let mut c = FrameCodec::new(1000);
            let out = feed(&mut c, &chunks, true);
            let expected: Vec<_> = lines.iter().map(|l| ok(l)).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
