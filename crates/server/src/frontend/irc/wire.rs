//! IRC's own text: parsing a received line, the reversible mapping between natter names and IRC nicks,
//! and cutting long texts into lines an IRC client accepts.

use natter_proto::name::MAX_NAME_CHARS;

/// One received IRC line, borrowed from the bytes it came in: `@tags :source COMMAND param param :trailing`.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The raw tags (without `@`), if any: only `label` is read.
    pub tags: Option<&'a str>,
    /// The command, upper-cased (numerics as they are).
    pub command: String,
    pub params: Vec<&'a str>,
}

impl<'a> Line<'a> {
    /// Parses a line (without its line ending). `None` for a line with no command.
    pub fn parse(line: &'a str) -> Option<Self> {
        let mut rest = line.trim_end_matches(['\r', '\n']).trim_start_matches(' ');
        let mut tags = None;
        if let Some(tagged) = rest.strip_prefix('@') {
            let (t, after) = tagged.split_once(' ').unwrap_or((tagged, ""));
            tags = Some(t);
            rest = after.trim_start_matches(' ');
        }
        if rest.starts_with(':') {
            // A source from a client is ignored (RFC 2812 allows only its own nick there).
            rest = rest.split_once(' ').map_or("", |(_, after)| after);
            rest = rest.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing);
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(param);
            rest = after;
        }
        Some(Self {
            tags,
            command: command.to_ascii_uppercase(),
            params,
        })
    }

    /// The value of the `label` tag (labeled-response), if the line has one.
    pub fn label(&self) -> Option<&'a str> {
        self.tags?
            .split(';')
            .find_map(|tag| tag.strip_prefix("label="))
            .filter(|l| !l.is_empty() && l.len() <= 64)
    }

    /// The client-only tags (`+name=value`), values unescaped.
    pub fn client_tags(&self) -> natter_proto::frame::Tags {
        let Some(tags) = self.tags else {
            return Default::default();
        };
        tags.split(';')
            .filter(|t| t.starts_with('+'))
            .map(|t| {
                let (k, v) = t.split_once('=').unwrap_or((t, ""));
                (k.to_owned(), unescape_tag(v))
            })
            .collect()
    }

    /// Parameter `i`, or `""`.
    pub fn param(&self, i: usize) -> &'a str {
        self.params.get(i).copied().unwrap_or("")
    }
}

/// The IRC nick of a natter name. Names are already letters, digits, `_`, `-` and `.` (UTF-8 nicks are
/// sent as they are, as Ergo does); what IRC forbids is mapped reversibly:
/// * `.` (read as a server name by IRC clients) becomes `|`, which natter names never contain;
/// * a leading digit (of any script) or `-` gets a `` ` `` in front, which natter names never contain either.
pub fn nick_of(name: &str) -> String {
    let mut nick = String::with_capacity(name.len() + 1);
    if name.starts_with(needs_mark) {
        nick.push('`');
    }
    nick.extend(name.chars().map(|c| if c == '.' { '|' } else { c }));
    nick
}

/// Whether a name's first character cannot start an IRC nick (a digit of any script, or `-`).
fn needs_mark(c: char) -> bool {
    c.is_numeric() || c == '-'
}

/// The natter name an IRC nick stands for: the mapping of [`nick_of`] undone. `None` for a nick that
/// cannot be a natter name (the characters IRC allows and natter does not: `[ ] \ ^ { }`, a `` ` ``
/// anywhere but first, or too long).
pub fn name_of(nick: &str) -> Option<String> {
    let rest = nick.strip_prefix('`').unwrap_or(nick);
    if rest.len() != nick.len() && !rest.starts_with(needs_mark) {
        return None;
    }
    let name: String = rest
        .chars()
        .map(|c| if c == '|' { '.' } else { c })
        .collect();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ok.then_some(name)
}

/// The natter room of an IRC channel (`#rust` → `rust`); `None` if it is not a channel name.
pub fn room_of(channel: &str) -> Option<&str> {
    channel.strip_prefix('#').filter(|r| !r.is_empty())
}

/// Whether IRC's rule for a nick holds (first a letter or one of `[]\`_^{|}`, then also digits and `-`),
/// with any non-ASCII letter allowed, as servers with UTF-8 nicks do.
pub fn is_irc_nick(nick: &str) -> bool {
    let special = |c: char| matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}');
    let mut chars = nick.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || special(c))
        && chars.all(|c| c.is_alphanumeric() || special(c) || c == '-')
}

/// Splits a message text into pieces that fit an IRC line: one per line of the text (IRC has no line
/// breaks), each at most `max` bytes, cut only between characters. Empty lines are skipped.
pub fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let mut line = line.trim_end_matches('\r');
        while line.len() > max {
            let mut cut = max;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            // Prefer a space near the end of the piece, so words stay whole.
            if let Some(space) = line[..cut].rfind(' ').filter(|s| *s > cut / 2) {
                cut = space + 1;
            }
            out.push(&line[..cut]);
            line = &line[cut..];
        }
        if !line.is_empty() {
            out.push(line);
        }
    }
    out
}

/// Undoes [`escape_tag`] (an unknown escape is the character itself; a trailing `\` is dropped).
pub fn unescape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Escapes a tag value (message-tags): `;` `\s` `\\` `\r` `\n`.
pub fn escape_tag(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Whether an IRC mask (`*` any run, `?` one character) matches `text`, ignoring ASCII case.
pub fn mask_matches(mask: &str, text: &str) -> bool {
    let mask: Vec<char> = mask.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut m, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if m < mask.len() && (mask[m] == '?' || mask[m] == text[t]) {
            m += 1;
            t += 1;
        } else if m < mask.len() && mask[m] == '*' {
            star = Some(m);
            mark = t;
            m += 1;
        } else if let Some(s) = star {
            m = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while m < mask.len() && mask[m] == '*' {
        m += 1;
    }
    m == mask.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_parse_like_irc() {
        let line = Line::parse("@label=a1;+x=y :me PRIVMSG #rust :hello there\r").unwrap();
        assert_eq!(line.command, "PRIVMSG");
        assert_eq!(line.params, vec!["#rust", "hello there"]);
        assert_eq!(line.label(), Some("a1"));
        let line = Line::parse("nick  foo").unwrap();
        assert_eq!((line.command.as_str(), line.params), ("NICK", vec!["foo"]));
        let line = Line::parse("PRIVMSG #a ::-)").unwrap();
        assert_eq!(line.params, vec!["#a", ":-)"]);
        let line = Line::parse("TOPIC #a :").unwrap();
        assert_eq!(line.params, vec!["#a", ""]);
        assert_eq!(Line::parse(""), None);
        assert_eq!(Line::parse("@a=b"), None);
    }

    #[test]
    fn names_map_to_nicks_and_back() {
        for (name, nick) in [
            ("alice", "alice"),
            ("john.doe", "john|doe"),
            ("1984", "`1984"),
            ("-x", "`-x"),
            ("张三", "张三"),
            ("a_b-c", "a_b-c"),
        ] {
            assert_eq!(nick_of(name), nick);
            assert_eq!(name_of(nick).as_deref(), Some(name));
        }
        assert_eq!(name_of("a[b]"), None);
        assert_eq!(name_of("`abc"), None);
        assert_eq!(name_of("a`b"), None);
        assert!(is_irc_nick("`1984") && is_irc_nick("john|doe") && is_irc_nick("张三"));
        assert!(!is_irc_nick("1984") && !is_irc_nick("a b") && !is_irc_nick(""));
    }

    proptest! {
        #[test]
        fn every_name_has_a_nick_that_maps_back(name in "[\\p{L}\\p{Nd}_.-]{1,32}") {
            let nick = nick_of(&name);
            prop_assert!(is_irc_nick(&nick), "{nick}");
            prop_assert_eq!(name_of(&nick), Some(name));
        }

        #[test]
        fn pieces_keep_every_character_and_fit(text in "[a-z 张三é\n]{0,300}", max in 8usize..60) {
            let pieces = pieces(&text, max);
            for piece in &pieces {
                prop_assert!(piece.len() <= max && !piece.is_empty() && !piece.contains('\n'));
            }
            let joined: String = pieces.concat();
            let without: String = text.chars().filter(|c| *c != '\n').collect();
            prop_assert_eq!(joined, without);
        }
    }

    #[test]
    fn masks_match() {
        assert!(mask_matches("*", "anything"));
        assert!(mask_matches("b?r", "BAR"));
        assert!(mask_matches("*bar*", "foobarbaz"));
        assert!(!mask_matches("bar", "bars"));
        assert!(mask_matches("*!*@*", "a!b@c"));
    }
}
