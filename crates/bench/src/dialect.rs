//! What differs between servers: registering, joining, sending, and spotting a delivered payload.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::BenchError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// natter's JSON lines.
    Native,
    /// IRC: NICK/USER, JOIN #room, PRIVMSG #room :text.
    Irc,
    /// Plain text lines: `ncat --chat` (one room, no names), or natter's own plain-text mode (the first line
    /// is the name; everyone is in the lobby). Payloads are found by their `b|` marker anywhere in a line,
    /// because ncat prefixes `<userN> ` only to the first line of each chunk it relays.
    Lines,
}

/// A registered connection, split for concurrent reading and writing.
pub struct Conn {
    pub read: BufReader<OwnedReadHalf>,
    pub write: OwnedWriteHalf,
}

impl Dialect {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Native => "native",
            Dialect::Irc => "irc",
            Dialect::Lines => "lines",
        }
    }

    /// Connects, registers as `name` and joins `room`; returns once the server confirmed the join.
    pub async fn connect(self, addr: &str, name: &str, room: &str) -> Result<Conn, BenchError> {
        self.connect_as(addr, name, room, false).await
    }

    /// Like [`Dialect::connect`]; with `lobby`, a natter client says a plain `hello` (natter's default
    /// configuration: everyone is also in the lobby) instead of staying out of the lobby.
    pub async fn connect_as(
        self,
        addr: &str,
        name: &str,
        room: &str,
        lobby: bool,
    ) -> Result<Conn, BenchError> {
        let stream = crate::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        let mut conn = Conn {
            read: BufReader::with_capacity(64 * 1024, r),
            write: w,
        };
        let mut line = String::new();
        match self {
            Dialect::Native => {
                // Not in the lobby (unless asked): the measured room is the only one, as on an IRC server.
                let hello = format!("{{\"type\":\"hello\",\"name\":\"{name}\",\"lobby\":{lobby}}}\n{{\"type\":\"join\",\"room\":\"{room}\"}}\n");
                conn.write.write_all(hello.as_bytes()).await?;
                // The join's replay (a `history` frame for the room) marks the end of registration.
                let marker = format!("\"type\":\"history\",\"room\":\"{room}\"");
                loop {
                    line.clear();
                    if conn.read.read_line(&mut line).await? == 0 {
                        return Err(BenchError::Register("server closed the connection".into()));
                    }
                    if line.contains("\"type\":\"error\"") {
                        return Err(BenchError::Register(line.trim().to_owned()));
                    }
                    if line.contains(&marker) {
                        return Ok(conn);
                    }
                }
            }
            Dialect::Lines => {
                conn.write.write_all(format!("{name}\n").as_bytes()).await?;
                // natter greets a plain-text user; ncat says nothing. Either way, a moment is enough.
                let greeting = tokio::time::timeout(
                    std::time::Duration::from_millis(200),
                    conn.read.read_line(&mut line),
                );
                let _ = greeting.await;
                Ok(conn)
            }
            Dialect::Irc => {
                // Register first (some servers finish registration only on a timer tick), then join.
                let reg = format!("NICK {name}\r\nUSER {name} 0 * :{name}\r\n");
                conn.write.write_all(reg.as_bytes()).await?;
                let mut joined = false;
                loop {
                    line.clear();
                    if conn.read.read_line(&mut line).await? == 0 {
                        return Err(BenchError::Register("server closed the connection".into()));
                    }
                    if let Some(rest) = line.strip_prefix("PING ") {
                        conn.write
                            .write_all(format!("PONG {rest}").as_bytes())
                            .await?;
                        continue;
                    }
                    let mut words = line.split(' ');
                    let _prefix = words.next();
                    match words.next() {
                        Some("001") if !joined => {
                            joined = true;
                            conn.write
                                .write_all(format!("JOIN #{room}\r\n").as_bytes())
                                .await?;
                        }
                        Some("366") => return Ok(conn),
                        // 4xx are errors, except 422 (no message of the day), which is only information.
                        Some(code) if code.starts_with('4') && code != "422" => {
                            return Err(BenchError::Register(line.trim().to_owned()))
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Appends one room message carrying `payload` (no quotes, backslashes or newlines) to `out`.
    pub fn encode(self, room: &str, payload: &str, out: &mut Vec<u8>) {
        match self {
            Dialect::Native => {
                out.extend_from_slice(b"{\"type\":\"say\",\"room\":\"");
                out.extend_from_slice(room.as_bytes());
                out.extend_from_slice(b"\",\"text\":\"");
                out.extend_from_slice(payload.as_bytes());
                out.extend_from_slice(b"\"}\n");
            }
            Dialect::Lines => {
                out.extend_from_slice(payload.as_bytes());
                out.push(b'\n');
            }
            Dialect::Irc => {
                out.extend_from_slice(b"PRIVMSG #");
                out.extend_from_slice(room.as_bytes());
                out.extend_from_slice(b" :");
                out.extend_from_slice(payload.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// The payload of a delivered room message, if `line` is one. Cheap: no JSON or IRC parsing on the hot
    /// path — the payload is the last `b|…` in the line (no name or room the generator uses contains `|`).
    pub fn payload(self, line: &[u8]) -> Option<&[u8]> {
        if self == Dialect::Native && !line.starts_with(b"{\"type\":\"message\"") {
            return None;
        }
        // Searched from the end, where every dialect puts the text: a few bytes, not the whole line.
        let start = line.windows(2).rposition(|w| w == b"b|")?;
        let len = line[start + 2..]
            .iter()
            .take_while(|&&b| b.is_ascii_digit() || b == b'|')
            .count();
        Some(&line[start..start + 2 + len])
    }

    /// A line the client must answer (IRC keep-alive), if any.
    pub fn answer(self, line: &str) -> Option<String> {
        match self {
            Dialect::Irc => line
                .strip_prefix("PING ")
                .map(|rest| format!("PONG {rest}")),
            Dialect::Native if line.starts_with("{\"type\":\"ping\"") => {
                Some("{\"type\":\"pong\"}\n".into())
            }
            Dialect::Native | Dialect::Lines => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_payloads_without_parsing_json() {
        let native = "{\"type\":\"message\",\"seq\":3,\"ts\":\"t\",\"room\":\"b\",\"from\":\"x\",\"text\":\"b|1|2|3\"}\n";
        assert_eq!(
            Dialect::Native.payload(native.as_bytes()),
            Some(&b"b|1|2|3"[..])
        );
        assert_eq!(
            Dialect::Native.payload(b"{\"type\":\"ack\",\"seq\":1}"),
            None
        );
        let irc = ":s1!u@h PRIVMSG #b :b|1|2|3\r\n";
        assert_eq!(Dialect::Irc.payload(irc.as_bytes()), Some(&b"b|1|2|3"[..]));
        let ncat = "<user5> b|1|2|3\n";
        assert_eq!(
            Dialect::Lines.payload(ncat.as_bytes()),
            Some(&b"b|1|2|3"[..])
        );
        let mut out = Vec::new();
        Dialect::Native.encode("b", "b|1|2|3", &mut out);
        assert_eq!(
            out,
            b"{\"type\":\"say\",\"room\":\"b\",\"text\":\"b|1|2|3\"}\n"
        );
    }
}
