//! Shared files: what a file message carries, the first line of a transfer connection, file names made
//! safe to write, and sizes for people and for flags.
//!
//! A file travels on a connection of its own (PROTOCOL.md §7): the chat connection asks (`offer`,
//! `fetch`) and gets a token; a new connection to the same port sends one [`DataRequest`] line with the
//! token, then raw bytes flow — no base64, no framing — so a transfer never waits behind chat, and chat
//! never behind a transfer.

use serde::{Deserialize, Serialize};

/// A shared file, as a message shows it. Its `id` is the seq of the message that shared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub id: u64,
    /// The file's name as shared (already made safe by the server: no directories, no control characters).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Its media type, guessed from the name (`application/octet-stream` when unknown).
    pub mime: String,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// The server no longer has it (retention, `--file-days`).
    #[serde(default, skip_serializing_if = "crate::frame::is_false")]
    pub expired: bool,
}

/// The first line of a transfer connection (instead of `hello`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DataRequest {
    /// `{"type":"upload","token":"…"}` — the server answers `upload_at` with the offset it has; the client
    /// then sends the rest of the file's bytes, and the server answers `uploaded` (or `error`).
    Upload { token: String },
    /// `{"type":"download","token":"…","offset":0}` — the server answers `sending`, then the file's bytes
    /// from `offset` to its end, then closes.
    Download {
        token: String,
        #[serde(default)]
        offset: u64,
    },
}

impl DataRequest {
    /// Reads a connection's first line as a transfer request; `None` for anything else (a chat session).
    pub fn parse(line: &[u8]) -> Option<Self> {
        let line = line.trim_ascii();
        // The cheap test first: a chat connection's `hello` never gets as far as serde.
        let looks = line.starts_with(b"{")
            && (memchr::memmem::find(line, b"\"upload\"").is_some()
                || memchr::memmem::find(line, b"\"download\"").is_some());
        if !looks {
            return None;
        }
        serde_json::from_slice(line).ok()
    }

    /// Encodes the request as one line.
    pub fn encode(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("requests always serialize");
        line.push(b'\n');
        line
    }
}

/// How a person behind `nc` fetches a file (the plain-text front end's file lines end with it).
pub const CLI_GET: &str = "natter get";

/// How a user of natter's clients fetches one.
pub const SLASH_GET: &str = "/get";

/// The text of a file message for clients that do not know `file`: readable on its own.
pub fn fallback_text(name: &str, size: u64, id: u64) -> String {
    format!("shared {name} ({}) — /get {id}", human_size(size))
}

/// A size for people: `512 B`, `2.4 MiB` (powers of 1024, one decimal).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Parses a size flag: `1048576`, `512K`, `100M`, `1G`, `2T` (powers of 1024; `KiB`/`MB` spellings too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (use e.g. 500M or 1G)"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("{text:?} is not a size (use e.g. 500M or 1G)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Bytes as lowercase hex (how a SHA-256 is written on the wire).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` is a SHA-256 in lowercase hex.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Longest file name kept, in bytes (most file systems allow 255; room is left for ` (12)`).
pub const MAX_NAME: usize = 200;

/// A file name that is safe to show and to create inside a directory, whatever the sender wrote: only
/// the last path component (of `/` or `\`), no control or invisible characters, no NUL, no leading dots
/// (`..`, hidden files), no trailing dots or spaces, no reserved Windows device names, at most
/// [`MAX_NAME`] bytes (the extension kept). Never empty.
pub fn safe_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_control() || is_invisible(c) {
                '_'
            } else if matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                // Not allowed in Windows names.
                '_'
            } else {
                c
            }
        })
        .collect();
    name = name.trim_start_matches(['.', ' ']).to_owned();
    name = name.trim_end_matches(['.', ' ']).to_owned();
    if name.is_empty() {
        return "file".to_owned();
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        name.insert(0, '_');
    }
    if name.len() > MAX_NAME {
        name = shorten(&name, MAX_NAME);
    }
    name
}

/// Characters that change how a name displays without being seen: bidirectional overrides (which make
/// `exe.pdf` read as `fdp.exe`), zero-width characters, the soft hyphen, the byte-order mark.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Cuts `name` to at most `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16)
        .unwrap_or("");
    let mut stem_end = max - ext.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{ext}", &name[..stem_end])
}

/// The `n`th alternative to `name` when it is taken: `report (1).pdf`.
pub fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.').filter(|&i| i > 0) {
        Some(i) => format!("{} ({n}){}", &name[..i], &name[i..]),
        None => format!("{name} ({n})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_plain_file_names() {
        for (raw, safe) in [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("/etc/shadow", "shadow"),
            ("..\\..\\Windows\\system32\\cmd.exe", "cmd.exe"),
            ("C:\\boot.ini", "boot.ini"),
            ("..", "file"),
            ("...", "file"),
            ("", "file"),
            ("/", "file"),
            (".bashrc", "bashrc"),
            ("a\0b", "a_b"),
            ("evil\u{1b}[31m.txt", "evil_[31m.txt"),
            ("rtl\u{202e}fdp.exe", "rtl_fdp.exe"),
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("com1.log", "_com1.log"),
            ("computer.txt", "computer.txt"),
            ("trailing. ", "trailing"),
            ("what?.txt", "what_.txt"),
            ("报告 2026.pdf", "报告 2026.pdf"),
        ] {
            assert_eq!(safe_name(raw), safe, "{raw:?}");
        }
        let long = format!("{}.pdf", "长".repeat(200));
        let short = safe_name(&long);
        assert!(
            short.len() <= MAX_NAME && short.ends_with(".pdf"),
            "{short}"
        );
    }

    #[test]
    fn sizes_read_and_print_in_powers_of_1024() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(2_516_582), "2.4 MiB");
        assert_eq!(human_size(1 << 30), "1.0 GiB");
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered("README", 2), "README (2)");
        assert_eq!(numbered(".x", 2), ".x (2)");
    }

    #[test]
    fn only_a_transfer_request_is_one() {
        assert_eq!(
            DataRequest::parse(br#"{"type":"upload","token":"t"}"#),
            Some(DataRequest::Upload { token: "t".into() })
        );
        assert_eq!(
            DataRequest::parse(b"{\"type\":\"download\",\"token\":\"t\",\"offset\":5}\r"),
            Some(DataRequest::Download {
                token: "t".into(),
                offset: 5
            })
        );
        assert_eq!(
            DataRequest::parse(br#"{"type":"hello","name":"upload"}"#),
            None
        );
        assert_eq!(DataRequest::parse(b"upload"), None);
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256(&"A".repeat(64)));
    }
}
