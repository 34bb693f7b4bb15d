//! natter-proto: everything both ends of a natter connection must agree on.
//!
//! * [`name`]: user and room names, validated and case-folded in one place.
//! * [`frame`]: the JSON frames of protocol v1 (see PROTOCOL.md), as serde enums.
//! * [`codec`]: newline framing with a length limit, where a bad frame is a value, not a dead stream.
//! * [`text`]: what message text may contain.
//! * [`time`]: the wire timestamp format and the lab's `YYYY-MM-DD HH:MM:SS` display.
//! * [`file`]: shared files: the file message, transfer requests, safe file names, sizes.
//! * [`command`]: the `/msg`, `/join`, ... line commands shared by the plain-text front end and the line client.
//!
//! No sockets and no runtime live here, so every piece is unit-testable.

pub mod auth;
pub mod codec;
pub mod command;
pub mod file;
pub mod frame;
pub mod name;
pub mod text;
pub mod time;

pub use codec::{FrameCodec, FrameError};
pub use frame::{ClientFrame, ErrorCode, LeftReason, ServerFrame};
pub use name::{Name, NameError, RoomName};
// For `error_args!`.
#[doc(hidden)]
pub use serde_json;

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// Default maximum length of one frame, in bytes, not counting the newline.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

/// The room every user joins on `hello`.
pub const LOBBY: &str = "lobby";
