//! natter-client: everything a natter client needs except the terminal drawing.
//!
//! * [`net`]: one connection: the socket's reader and writer tasks, frames in and out as typed events.
//! * [`chat`]: a session across connections: reconnect, resume, resend unacknowledged messages.
//!   The UI never touches the socket.
//! * [`line`]: the line-mode client (`natter join`): a prompt that incoming text never mangles, or plain
//!   stdin/stdout when used from a script.
//! * [`display`]: how frames read as lines of text (the lab's `[YYYY-MM-DD HH:MM:SS] name: text`).
//! * [`tui`]: the full-screen client (ratatui): pure `App` state, `ui` drawing, `event` input.

pub mod chat;
pub mod display;
pub mod editor;
pub mod line;
pub mod net;
pub mod signals;
pub mod tui;

pub use line::{run_join, LineOptions};

/// Why a client session ended badly. Each is one clear line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {}", connect_hint(.source))]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server refused the name: {0}")]
    NameRejected(String),
    #[error("no name given (use --name NAME)")]
    NoName,
    #[error("the connection to the server was lost")]
    ConnectionLost,
    #[error(
        "{addr} did not answer within {secs} s; is a natter server (`natter serve`) running there?"
    )]
    NoAnswer { addr: String, secs: f64 },
    #[error("interrupted")]
    Interrupted,
    #[error("{addr} answered, but not as a natter server; check the address and port")]
    NotNatter { addr: String },
    #[error("{0} message(s) were not confirmed by the server")]
    Unconfirmed(usize),
    #[error("the server refused {count} message(s): {first}")]
    Refused { count: usize, first: String },
    #[error("gave up: {0}")]
    GaveUp(String),
    #[error("terminal error: {0}")]
    Terminal(String),
}

/// What a failed connect means for the user, and what to do about it.
fn connect_hint(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "nothing is listening there; is `natter serve` running at that address?".into()
        }
        std::io::ErrorKind::InvalidInput => format!("{e} (use HOST:PORT, e.g. 127.0.0.1:5500)"),
        _ => e.to_string(),
    }
}
