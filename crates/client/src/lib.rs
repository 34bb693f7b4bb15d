//! natter-client: everything a natter client needs except the terminal drawing.
//!
//! * [`net`]: one connection: the socket's reader and writer tasks, frames in and out as typed events.
//! * [`chat`]: a session across connections: reconnect, resume, resend unacknowledged messages.
//!   The UI never touches the socket.
//! * [`line`]: the line-mode client (`natter join`): a prompt that incoming text never mangles, or plain
//!   stdin/stdout when used from a script.
//! * [`transfer`]: sharing and downloading files — resumed, verified, in the background.
//! * [`display`]: how frames read as lines of text (the lab's `[YYYY-MM-DD HH:MM:SS] name: text`).
//! * [`tui`]: the full-screen client (ratatui): pure `App` state, `ui` drawing, `event` input.

use natter_i18n::t;

pub mod chat;
pub mod cli;
pub mod display;
pub mod editor;
pub mod identity;
pub mod line;
pub mod net;
pub mod signals;
pub mod tls;
pub mod transfer;
pub mod tui;

pub use line::{run_join, LineOptions};

/// Why a client session ended badly. Each is one clear line for the user, in the client's language.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}", t!("error-connect", server = addr, why = connect_hint(.source)))]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The server's refusal, already in the client's language.
    #[error("{}", t!("error-name-refused", why = .0))]
    NameRejected(String),
    /// The name is owned (or the password was wrong): its password may get you in.
    #[error("{}", t!("error-name-refused", why = .0))]
    NameOwned(String),
    #[error("{}", t!("error-no-name"))]
    NoName,
    #[error("{}", t!("error-connection-lost"))]
    ConnectionLost,
    #[error("{}", t!("error-no-answer", server = addr, secs = *secs))]
    NoAnswer { addr: String, secs: f64 },
    #[error("{}", t!("error-interrupted"))]
    Interrupted,
    #[error("{}", t!("error-not-natter", server = addr))]
    NotNatter { addr: String },
    #[error("{}", t!("error-unconfirmed", count = *.0))]
    Unconfirmed(usize),
    #[error("{}", t!("error-refused", count = *count, first = first))]
    Refused { count: usize, first: String },
    #[error("{}", t!("gave-up", reason = .0))]
    GaveUp(String),
    /// Files that did not make it (`natter send`, `natter get`); each was said on stderr already.
    #[error("{first}")]
    Transfers { count: usize, first: String },
    #[error("{}", t!("error-terminal", why = .0))]
    Terminal(String),
    /// Not the certificate this client saw at `addr` before: maybe someone is in the middle.
    #[error("{}", t!("error-cert-changed", server = addr, old = old, new = new, file = file))]
    CertChanged {
        addr: String,
        old: String,
        new: String,
        file: String,
    },
    #[error("{}", t!("error-not-pinned", server = addr, pinned = pinned, got = got))]
    NotPinned {
        addr: String,
        pinned: String,
        got: String,
    },
    #[error("{}", t!("error-tls", server = addr, why = why))]
    Tls { addr: String, why: String },
}

/// `/lang [LANG]` in natter's own clients: switches the language this client speaks from now on and
/// says so in it (`Ok`), or says how to use the command (`Err`).
pub fn switch_lang(tag: Option<&str>) -> Result<String, String> {
    match tag.map(|t| (t, natter_i18n::Lang::parse(t))) {
        None => Err(t!("usage", usage = t!("usage-lang"))),
        Some((_, Some(lang))) => {
            natter_i18n::set_lang(lang);
            Ok(t!("lang-switched"))
        }
        Some((tag, None)) => Err(t!("lang-unknown", lang = tag)),
    }
}

/// The line that tells the user a server's certificate was trusted for the first time (and remembered),
/// with its fingerprint to compare with what the server's operator sees.
pub fn first_use_notice(server: &str, trust: &tls::Trust) -> Option<String> {
    match trust {
        tls::Trust::FirstUse { fingerprint } => Some(t!(
            "first-use",
            server = net::with_port(server),
            fingerprint = fingerprint
        )),
        _ => None,
    }
}

/// What a failed connect means for the user, and what to do about it.
fn connect_hint(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => t!("error-connect-refused"),
        std::io::ErrorKind::InvalidInput => t!("error-connect-address", why = e.to_string()),
        _ => e.to_string(),
    }
}
