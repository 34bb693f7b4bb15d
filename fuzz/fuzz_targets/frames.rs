//! Everything a hostile peer's bytes go through before the hub: the frame decoder (split at a point
//! the input chooses, with `decode_eof` at the end), JSON parsing and classification, the plain-text
//! translation, and the name and text rules. Nothing may panic, and what parses must round-trip.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use natter_proto::{command, text, ClientFrame, FrameCodec, Name};
use natter_server::plain;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let split = (split as usize).min(data.len());
    let mut codec = FrameCodec::new(256);
    let mut buf = BytesMut::new();
    let mut lines = Vec::new();
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        while let Ok(Some(item)) = codec.decode(&mut buf) {
            lines.push(item);
        }
    }
    while let Ok(Some(item)) = codec.decode_eof(&mut buf) {
        lines.push(item);
    }
    for line in lines.into_iter().flatten() {
        assert!(line.len() <= 256, "a frame longer than the limit got through");
        assert!(!line.contains(&b'\n'));
        if let Ok(frame) = ClientFrame::parse(&line) {
            let again = ClientFrame::parse(&frame.encode()[..frame.encode().len() - 1]).expect("re-parse");
            assert_eq!(again, frame);
        }
        let _ = plain::translate(&line, false);
        let _ = plain::translate(&line, true);
        if let Ok(s) = std::str::from_utf8(&line) {
            let _ = command::parse(s);
            if let Ok(name) = Name::new(s) {
                assert_eq!(Name::new(name.as_str()).unwrap(), name, "names are stable under normalisation");
            }
            let clean = text::neutralise(s);
            assert!(!clean.chars().any(text::is_forbidden));
        }
    }
});
