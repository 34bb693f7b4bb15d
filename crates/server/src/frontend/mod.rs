//! Front ends: how one kind of client speaks to natter.
//!
//! A front end translates the lines its clients send into [`ClientFrame`]s — the requests the session
//! carries out with the hub — and renders the [`Outgoing`] items the hub pushes back into its own bytes.
//! The hub never learns which front end a user came from: every outbox receives the same items.
//!
//! A connection's front end is picked from its first line ([`pick`]): a JSON object means [`native`]
//! (PROTOCOL.md), an HTTP request line gets a one-line answer, anything else is [`plain`] text for `nc`.
//! The part that translates stays with the session's reader; the part that renders ([`Render`]) moves to
//! the connection's writer task, so each half has one owner. IRC, WebSocket and the lab's own protocol
//! are more implementations of the same two traits.

pub mod irc;
pub mod native;
pub mod plain;

use natter_proto::frame::BadFrame;
use natter_proto::ClientFrame;

use crate::outbox::Outgoing;

/// What one received line asks of the session.
#[derive(Debug, PartialEq)]
pub enum Input {
    /// A request to carry out.
    Frame(ClientFrame),
    /// Several requests, carried out in order (a front end whose one command means more than one).
    Frames(Vec<ClientFrame>),
    /// A request that could not be understood: answered with an `error` frame, nothing else happens.
    Invalid(BadFrame),
    /// Something to tell the typist without involving the hub (help, usage).
    Notice(String),
    /// A notice, then requests carried out in order (an IRC line naming several targets, some refused
    /// at once).
    Both(String, Vec<ClientFrame>),
    /// A notice, requests carried out in order, and once every answer to them is queued (acks included)
    /// another notice: what the requests caused is between the two (IRC's labeled responses).
    Wrapped(String, Vec<ClientFrame>, String),
    /// Nothing to do.
    Nothing,
}

/// The reader's half of a front end: it turns lines into requests.
pub trait FrontEnd: Send + Sync {
    /// Translates one line (without its newline). `registered`: whether `hello` has succeeded.
    fn translate(&mut self, line: &[u8], registered: bool) -> Input;

    /// The writer's half, which shows what the hub sends.
    fn renderer(&self) -> Box<dyn Render>;

    /// The front end's name, for `status` (`native`, `plain`).
    fn name(&self) -> &'static str;

    /// Whether a silent connection is pinged and, if it stays silent, closed. A program answers pings;
    /// a person reading in `nc` for hours cannot, and is covered by TCP keepalive instead.
    fn pinged_when_idle(&self) -> bool;
}

/// The writer's half of a front end: it shows outgoing items in the front end's own bytes.
pub trait Render: Send {
    /// Appends the rendering of one item to `out` (nothing, if this front end does not show it).
    fn render(&mut self, item: &Outgoing, out: &mut Vec<u8>);
}

/// What a connection's first line says it is.
pub enum Picked {
    /// An HTTP request on the chat port: answered with [`http_answer`] and closed.
    Http,
    FrontEnd(Box<dyn FrontEnd>),
}

/// The answer to an HTTP request sent to the chat port, in the server's language.
pub fn http_answer(lang: natter_i18n::Lang) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{}\n",
        natter_i18n::tl!(lang, "http-not-a-web-server")
    )
}

/// Picks the front end from a connection's first (non-blank) line.
pub fn pick(first_line: &[u8], lang: natter_i18n::Lang) -> Picked {
    if is_http_request(first_line) {
        Picked::Http
    } else if first_line.trim_ascii_start().first() == Some(&b'{') {
        Picked::FrontEnd(Box::new(native::Native))
    } else {
        Picked::FrontEnd(Box::new(plain::Plain::new(lang)))
    }
}

/// Whether a first line is an HTTP request line (`GET / HTTP/1.1`).
fn is_http_request(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    method.len() <= 10
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && version.starts_with("HTTP/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_picks_the_front_end() {
        assert!(matches!(
            pick(b"GET / HTTP/1.1", natter_i18n::Lang::En),
            Picked::Http
        ));
        let Picked::FrontEnd(native) = pick(br#"  {"type":"ping"}"#, natter_i18n::Lang::En) else {
            panic!("not a front end")
        };
        assert!(native.pinged_when_idle());
        let Picked::FrontEnd(plain) = pick("张三".as_bytes(), natter_i18n::Lang::En) else {
            panic!("not a front end")
        };
        assert!(!plain.pinged_when_idle());
        assert!(!is_http_request(b"get / HTTP/1.1"));
        assert!(!is_http_request(b"GET /"));
    }
}
