//! The native front end: one JSON object per line each way (PROTOCOL.md). Outgoing frames are already
//! encoded once for every recipient ([`Outgoing::new`]), so rendering is a copy.

use natter_proto::ClientFrame;

use super::{FrontEnd, Input, Render};
use crate::outbox::Outgoing;

/// Natter's own clients (and anything that speaks PROTOCOL.md).
pub struct Native;

impl FrontEnd for Native {
    fn translate(&mut self, line: &[u8], _registered: bool) -> Input {
        match ClientFrame::parse(line) {
            Ok(frame) => Input::Frame(frame),
            Err(bad) => Input::Invalid(bad),
        }
    }

    fn renderer(&self) -> Box<dyn Render> {
        Box::new(Native)
    }

    fn name(&self) -> &'static str {
        "native"
    }

    fn pinged_when_idle(&self) -> bool {
        true
    }
}

impl Render for Native {
    fn render(&mut self, item: &Outgoing, out: &mut Vec<u8>) {
        match item {
            Outgoing::Frame { json, .. } => out.extend_from_slice(json),
            Outgoing::Raw(bytes) => out.extend_from_slice(bytes),
            Outgoing::Notice(_) => {} // notices exist only for text front ends
        }
    }
}
