//! A small line editor for the line-mode client: one prompt line at the bottom, messages printed above it.
//!
//! Two halves:
//! * [`LineBuffer`] and [`layout`] are pure: the text being typed, the cursor, history, and where every
//!   character lands on screen, measured in display columns (CJK and most emoji are 2 columns wide,
//!   combining marks 0). Unit-tested below.
//! * [`Editor`] owns the terminal (raw mode, bracketed paste) and redraws the prompt whenever a message
//!   is printed above it, so incoming text never lands in the middle of what you are typing.
//!
//! Input arrives in bursts — an input method commits several Chinese characters at once, a paste brings
//! hundreds — and every character of a burst is handled before the next redraw.

use std::io::{self, Write};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, queue, style, terminal};
use unicode_width::UnicodeWidthChar;

/// The text being typed and the cursor within it (a char index).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineBuffer {
    chars: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing history with Up/Down; `None` when editing a fresh line.
    browsing: Option<usize>,
    /// The fresh line, kept while browsing history.
    draft: Vec<char>,
}

/// Most lines kept for Up/Down.
const HISTORY: usize = 500;

impl LineBuffer {
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Display columns taken by the characters before the cursor.
    pub fn width_before_cursor(&self) -> usize {
        self.chars[..self.cursor].iter().map(|&c| width(c)).sum()
    }

    pub fn insert(&mut self, c: char) {
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
    }

    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            self.insert(c);
        }
    }

    /// Removes the whole character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    /// Ctrl-U: delete everything before the cursor.
    pub fn kill_to_start(&mut self) {
        self.chars.drain(..self.cursor);
        self.cursor = 0;
    }

    /// Ctrl-K: delete everything after the cursor.
    pub fn kill_to_end(&mut self) {
        self.chars.truncate(self.cursor);
    }

    /// Ctrl-W: delete the word before the cursor (and the spaces after it).
    pub fn kill_word(&mut self) {
        let mut start = self.cursor;
        while start > 0 && self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !self.chars[start - 1].is_whitespace() {
            start -= 1;
        }
        self.chars.drain(start..self.cursor);
        self.cursor = start;
    }

    /// Enter: returns the line, remembers it in history, and starts a fresh one.
    pub fn submit(&mut self) -> String {
        let line = self.text();
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        self.chars.clear();
        self.cursor = 0;
        self.browsing = None;
        line
    }

    /// Removes the latest history line (one that must not be remembered, like a password).
    pub fn forget_last(&mut self) {
        self.history.pop();
    }

    /// Up: an older history line.
    pub fn older(&mut self) {
        let next = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.chars);
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        self.chars = self.history[next].chars().collect();
        self.cursor = self.chars.len();
    }

    /// Down: a newer history line, then back to the draft.
    pub fn newer(&mut self) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.chars = self.history[i + 1].chars().collect();
        } else {
            self.browsing = None;
            self.chars = std::mem::take(&mut self.draft);
        }
        self.cursor = self.chars.len();
    }
}

/// How a typed character is drawn: newlines from a paste as `↵`, other controls as `�`.
pub fn shown(c: char) -> char {
    match c {
        '\n' => '↵',
        '\t' => ' ',
        c if c.is_control() => '\u{fffd}',
        c => c,
    }
}

/// Display columns of a character as drawn.
pub fn width(c: char) -> usize {
    shown(c).width().unwrap_or(0)
}

/// Where the prompt and buffer land on a terminal `cols` wide: (cursor row, cursor col, last row).
/// Rows count from the prompt's first row. A wide character that does not fit at the end of a row moves
/// whole to the next one, as terminals do.
pub fn layout(prompt: &str, buf: &LineBuffer, cols: usize) -> (usize, usize, usize) {
    let cols = cols.max(2);
    let (mut row, mut col) = (0usize, 0usize);
    let place = |row: &mut usize, col: &mut usize, w: usize| {
        if *col + w > cols {
            *row += 1;
            *col = 0;
        }
        *col += w;
    };
    for c in prompt.chars() {
        place(&mut row, &mut col, width(c));
    }
    let mut cursor = None;
    for (i, &c) in buf.chars.iter().enumerate() {
        if i == buf.cursor {
            cursor = Some((row, col));
        }
        place(&mut row, &mut col, width(c));
    }
    // A cursor at the very end of a full row sits at the start of the next one.
    if col >= cols {
        row += 1;
        col = 0;
    }
    let (crow, ccol) = match cursor {
        Some((r, c)) if c >= cols => (r + 1, 0),
        Some(rc) => rc,
        None => (row, col),
    };
    (crow, ccol, row)
}

/// Continuation rows start with this: a printed line's own rows begin with `[`, `*` or `!`, so a row that
/// starts indented is always the rest of the line above — padding a message so that its tail wraps to the
/// start of a row cannot make that tail pass for another message.
pub const CONTINUATION: &str = "    ";

/// Splits a printed line into the rows a terminal `cols` wide shows, wrapping it ourselves (wide
/// characters move whole to the next row) and starting every row after the first with [`CONTINUATION`].
/// Newlines in the line start new rows the same way.
pub fn rows(line: &str, cols: usize) -> Vec<String> {
    let cols = cols.max(2);
    let indent = if cols > 2 * CONTINUATION.len() {
        CONTINUATION
    } else {
        " "
    };
    let mut rows = Vec::new();
    for (n, logical) in line.split('\n').enumerate() {
        let mut row = String::new();
        let mut col = 0;
        // The body's own continuation lines already carry the indent; don't add it twice.
        let mut rest = logical;
        if n > 0 {
            rest = logical.strip_prefix(CONTINUATION).unwrap_or(logical);
            row.push_str(indent);
            col = indent.len();
        }
        for c in rest.chars() {
            let w = width(c);
            if col + w > cols && col > indent.len() {
                rows.push(std::mem::take(&mut row));
                row.push_str(indent);
                col = indent.len();
                if c == ' ' {
                    continue; // the space the row broke at
                }
            }
            row.push(c);
            col += w;
        }
        rows.push(row);
    }
    rows
}

/// What a key press means to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter on a line.
    Submit(String),
    /// Ctrl-D on an empty line.
    Eof,
    /// Ctrl-C.
    Interrupt,
    /// The buffer changed or nothing happened: redraw if needed.
    Edited,
}

/// Tab after `/send ` (with the cursor at the end): the path is completed as far as it is unambiguous,
/// as a shell does — the whole name when one entry matches, else the part all matches share.
fn complete_send_path(buf: &mut LineBuffer) {
    let text = buf.text();
    let Some(typed) = text.strip_prefix("/send ") else {
        return;
    };
    if buf.cursor() != text.chars().count() {
        return;
    }
    let candidates = crate::transfer::complete_path(typed);
    let Some(first) = candidates.first() else {
        return;
    };
    let common = candidates.iter().fold(first.as_str(), |common, c| {
        let shared = common
            .char_indices()
            .zip(c.chars())
            .find(|((_, a), b)| a != b)
            .map_or(common.len().min(c.len()), |((i, _), _)| i);
        &common[..shared]
    });
    if let Some(rest) = common.strip_prefix(typed) {
        let rest = rest.to_owned();
        buf.insert_str(&rest);
    }
}

/// Applies one terminal event to the buffer. Pure, so key handling is testable without a terminal.
pub fn apply(buf: &mut LineBuffer, event: &Event) -> Action {
    match event {
        Event::Paste(text) => {
            buf.insert_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
            Action::Edited
        }
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press | KeyEventKind::Repeat,
            ..
        }) => {
            let ctrl = modifiers.contains(KeyModifiers::CONTROL);
            match code {
                KeyCode::Char('c') if ctrl => return Action::Interrupt,
                KeyCode::Char('d') if ctrl && buf.is_empty() => return Action::Eof,
                KeyCode::Char('d') if ctrl => buf.delete(),
                KeyCode::Char('a') if ctrl => buf.home(),
                KeyCode::Char('e') if ctrl => buf.end(),
                KeyCode::Char('u') if ctrl => buf.kill_to_start(),
                KeyCode::Char('k') if ctrl => buf.kill_to_end(),
                KeyCode::Char('w') if ctrl => buf.kill_word(),
                KeyCode::Char('b') if ctrl => buf.left(),
                KeyCode::Char('f') if ctrl => buf.right(),
                KeyCode::Char('p') if ctrl => buf.older(),
                KeyCode::Char('n') if ctrl => buf.newer(),
                KeyCode::Char('j' | 'm') if ctrl => return Action::Submit(buf.submit()),
                KeyCode::Char(_) if ctrl || modifiers.contains(KeyModifiers::ALT) => {}
                KeyCode::Char(c) => buf.insert(*c),
                KeyCode::Enter => return Action::Submit(buf.submit()),
                KeyCode::Backspace => buf.backspace(),
                KeyCode::Delete => buf.delete(),
                KeyCode::Left => buf.left(),
                KeyCode::Right => buf.right(),
                KeyCode::Home => buf.home(),
                KeyCode::End => buf.end(),
                KeyCode::Up => buf.older(),
                KeyCode::Down => buf.newer(),
                KeyCode::Tab => complete_send_path(buf),
                _ => {}
            }
            Action::Edited
        }
        _ => Action::Edited,
    }
}

/// The terminal side: raw mode while alive, restored on drop (and on panic, via the hook installed in
/// [`Editor::new`]).
pub struct Editor {
    pub buf: LineBuffer,
    prompt: String,
    /// Whether the prompt is on screen.
    active: bool,
    /// Rows between the prompt's first row and the cursor, as last drawn.
    cursor_row: usize,
    /// What is typed is a password: nothing of it is shown.
    pub secret: bool,
}

/// Puts the terminal back the way we found it.
pub fn restore_terminal() {
    let mut out = io::stdout();
    let _ = queue!(out, crossterm::event::DisableBracketedPaste);
    let _ = out.flush();
    let _ = terminal::disable_raw_mode();
}

impl Editor {
    pub fn new() -> io::Result<Self> {
        terminal::enable_raw_mode()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        let mut out = io::stdout();
        queue!(out, crossterm::event::EnableBracketedPaste)?;
        out.flush()?;
        Ok(Self {
            buf: LineBuffer::default(),
            prompt: String::new(),
            active: false,
            cursor_row: 0,
            secret: false,
        })
    }

    fn cols() -> usize {
        terminal::size().map(|(c, _)| c as usize).unwrap_or(80)
    }

    /// Moves to the prompt's first row and clears from there down.
    fn erase(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.active {
            queue!(out, cursor::MoveToColumn(0))?;
            if self.cursor_row > 0 {
                queue!(out, cursor::MoveUp(self.cursor_row as u16))?;
            }
            queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown))?;
        }
        self.cursor_row = 0;
        Ok(())
    }

    fn draw(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.secret {
            queue!(out, style::Print(&self.prompt))?;
            return Ok(());
        }
        let cols = Self::cols();
        let text: String = self.buf.chars.iter().map(|&c| shown(c)).collect();
        queue!(out, style::Print(&self.prompt), style::Print(&text))?;
        let (crow, ccol, last) = layout(&self.prompt, &self.buf, cols);
        // After exactly filling a row a terminal parks the cursor on that row's last column; make the wrap
        // happen so the cursor really is at the start of row `last`.
        if last > 0 && layout_end_col(&self.prompt, &self.buf, cols) == 0 {
            queue!(out, style::Print("\r\n"))?;
        }
        if last > crow {
            queue!(out, cursor::MoveUp((last - crow) as u16))?;
        }
        queue!(out, cursor::MoveToColumn(ccol as u16))?;
        self.cursor_row = crow;
        Ok(())
    }

    /// Shows the prompt with the current buffer.
    pub fn show_prompt(&mut self, prompt: &str) -> io::Result<()> {
        if self.active && self.prompt == prompt {
            return Ok(()); // already on screen (print_above redraws it after every line)
        }
        let mut out = io::stdout().lock();
        self.erase(&mut out)?;
        self.prompt = prompt.to_owned();
        self.active = true;
        self.draw(&mut out)?;
        out.flush()
    }

    /// Removes the prompt from the screen (while nothing is being asked).
    pub fn hide_prompt(&mut self) -> io::Result<()> {
        let mut out = io::stdout().lock();
        self.erase(&mut out)?;
        self.active = false;
        out.flush()
    }

    /// Redraws after an edit.
    pub fn redraw(&mut self) -> io::Result<()> {
        if !self.active {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        self.erase(&mut out)?;
        self.draw(&mut out)?;
        out.flush()
    }

    /// Clears the screen and puts the prompt back at the top.
    pub fn clear_screen(&mut self) -> io::Result<()> {
        let mut out = io::stdout().lock();
        queue!(
            out,
            terminal::Clear(terminal::ClearType::All),
            cursor::MoveTo(0, 0)
        )?;
        self.cursor_row = 0;
        if self.active {
            self.draw(&mut out)?;
        }
        out.flush()
    }

    /// Prints a line above the prompt, then puts the prompt back.
    pub fn print_above(&mut self, line: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        self.erase(&mut out)?;
        // Wrapped here, not by the terminal, so continuation rows are indented (see `rows`).
        for row in rows(line, Self::cols()) {
            // Raw mode: a bare "\n" would not return the carriage.
            queue!(out, style::Print(row), style::Print("\r\n"))?;
        }
        if self.active {
            self.draw(&mut out)?;
        }
        out.flush()
    }
}

/// The column where drawing ends (0 means a row was exactly filled, or nothing was drawn).
fn layout_end_col(prompt: &str, buf: &LineBuffer, cols: usize) -> usize {
    let mut end = buf.clone();
    end.cursor = end.chars.len();
    layout(prompt, &end, cols).1
}

impl Drop for Editor {
    fn drop(&mut self) {
        let _ = self.hide_prompt();
        restore_terminal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect 6 of issue 10: text padded to wrap at the terminal's edge cannot start a row that looks
    /// like a message of its own.
    #[test]
    fn wrapped_rows_are_indented_so_a_padded_tail_cannot_pass_for_a_message() {
        let fake = "[2026-11-27 10:00:00] bob: send me your password";
        let line = format!(
            "[2026-11-27 10:00:00] mallory: hi{}{fake}",
            " ".repeat(80 - 35)
        );
        let shown = rows(&line, 80);
        assert!(shown.len() > 1);
        for row in &shown[1..] {
            assert!(row.starts_with(CONTINUATION), "{row:?}");
        }
        assert!(shown
            .iter()
            .all(|r| r.chars().map(width).sum::<usize>() <= 80));
        // Multi-line bodies keep one indent; wide characters never split across rows.
        let shown = rows("[t] 张三: 你好\n    世界世界", 9);
        assert_eq!(shown, ["[t] 张三:", "    你好", "    世界", "    世界"]);
    }

    fn typed(s: &str) -> LineBuffer {
        let mut b = LineBuffer::default();
        b.insert_str(s);
        b
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    /// Line mode: Tab after `/send ` completes a path as far as it is unambiguous.
    #[test]
    fn tab_completes_the_path_after_send() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report-2026.pdf"), b"").unwrap();
        std::fs::write(dir.path().join("report-2025.pdf"), b"").unwrap();
        std::fs::write(dir.path().join("photo.jpg"), b"").unwrap();
        let base = format!("/send {}/", dir.path().display());
        let mut buf = LineBuffer::default();
        buf.insert_str(&format!("{base}ph"));
        apply(&mut buf, &key(KeyCode::Tab));
        assert_eq!(buf.text(), format!("{base}photo.jpg"));
        let mut buf = LineBuffer::default();
        buf.insert_str(&format!("{base}re"));
        apply(&mut buf, &key(KeyCode::Tab));
        assert_eq!(buf.text(), format!("{base}report-202"));
        // Not after /send: nothing happens.
        let mut buf = LineBuffer::default();
        buf.insert_str("hello ph");
        apply(&mut buf, &key(KeyCode::Tab));
        assert_eq!(buf.text(), "hello ph");
    }

    fn ctrl(c: char) -> Event {
        Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    #[test]
    fn backspace_removes_one_whole_chinese_character() {
        let mut b = typed("你好世界");
        b.backspace();
        assert_eq!(b.text(), "你好世");
        b.left();
        b.backspace();
        assert_eq!(b.text(), "你世");
    }

    #[test]
    fn cursor_sits_right_after_the_last_cjk_character() {
        let b = typed("你好");
        // "> " is 2 columns, each CJK character 2 more.
        assert_eq!(layout("> ", &b, 80), (0, 6, 0));
        let mut b = typed("a你b");
        b.left();
        assert_eq!(layout("> ", &b, 80), (0, 5, 0));
    }

    #[test]
    fn wide_characters_never_split_across_rows() {
        // 9 columns wide: "> " + 3 CJK = 8 columns; the 4th CJK char cannot fit in column 9 and wraps whole.
        let b = typed("你好世界");
        assert_eq!(layout("> ", &b, 9), (1, 2, 1));
        // Exactly filling a row puts the cursor at the start of the next.
        let b = typed("abcdefg");
        assert_eq!(layout("> ", &b, 9), (1, 0, 1));
    }

    #[test]
    fn combining_marks_take_no_column() {
        let b = typed("e\u{301}");
        assert_eq!(layout("", &b, 80), (0, 1, 0));
    }

    #[test]
    fn a_burst_of_input_is_handled_whole() {
        let mut b = LineBuffer::default();
        for c in "我正在输入".chars() {
            apply(&mut b, &key(KeyCode::Char(c)));
        }
        assert_eq!(
            apply(&mut b, &key(KeyCode::Enter)),
            Action::Submit("我正在输入".into())
        );
        assert!(b.is_empty());
    }

    #[test]
    fn editing_keys() {
        let mut b = typed("hello big world");
        apply(&mut b, &ctrl('w'));
        assert_eq!(b.text(), "hello big ");
        apply(&mut b, &key(KeyCode::Home));
        apply(&mut b, &key(KeyCode::Delete));
        assert_eq!(b.text(), "ello big ");
        apply(&mut b, &key(KeyCode::End));
        apply(&mut b, &ctrl('u'));
        assert_eq!(b.text(), "");
        assert_eq!(apply(&mut b, &ctrl('d')), Action::Eof);
        assert_eq!(apply(&mut b, &ctrl('c')), Action::Interrupt);
    }

    #[test]
    fn history_up_and_down_keeps_the_draft() {
        let mut b = LineBuffer::default();
        b.insert_str("one");
        b.submit();
        b.insert_str("two");
        b.submit();
        b.insert_str("dra");
        b.older();
        assert_eq!(b.text(), "two");
        b.older();
        assert_eq!(b.text(), "one");
        b.newer();
        b.newer();
        assert_eq!(b.text(), "dra");
    }

    #[test]
    fn a_multi_line_paste_is_one_line_of_input() {
        let mut b = LineBuffer::default();
        apply(&mut b, &Event::Paste("first\r\nsecond".into()));
        assert_eq!(
            apply(&mut b, &key(KeyCode::Enter)),
            Action::Submit("first\nsecond".into())
        );
    }
}
