//! Timestamps: the wire form (RFC 3339, UTC, milliseconds) and the lab's display form
//! `YYYY-MM-DD HH:MM:SS` in the viewer's local time.

use jiff::{tz::TimeZone, Timestamp};

/// Formats a timestamp for the wire: `2026-11-25T16:38:57.123Z`.
pub fn wire(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The current time in wire form.
pub fn now_wire() -> String {
    wire(Timestamp::now())
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// A moment in milliseconds since the epoch, in wire form.
pub fn wire_ms(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map_or_else(|_| now_wire(), wire)
}

/// Parses a wire timestamp (any RFC 3339 form).
pub fn parse(ts: &str) -> Option<Timestamp> {
    ts.parse().ok()
}

/// Formats a timestamp as `YYYY-MM-DD HH:MM:SS` in the system's local time zone.
pub fn local_display(ts: Timestamp) -> String {
    ts.to_zoned(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Formats a wire timestamp for display in local time; an unparseable one is shown as it came.
pub fn local_display_wire(ts: &str) -> String {
    match parse(ts) {
        Some(t) => local_display(t),
        None => ts.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_has_milliseconds_and_z() {
        let t: Timestamp = "2026-11-25T16:38:57Z".parse().unwrap();
        assert_eq!(wire(t), "2026-11-25T16:38:57.000Z");
        let t: Timestamp = "2026-11-25T16:38:57.123456Z".parse().unwrap();
        assert_eq!(wire(t), "2026-11-25T16:38:57.123Z");
    }

    #[test]
    fn wire_round_trips() {
        let s = now_wire();
        assert_eq!(wire(parse(&s).unwrap()), s);
    }

    #[test]
    fn display_form_is_the_labs() {
        let d = local_display_wire("2026-11-25T16:38:57.123Z");
        assert_eq!(d.len(), "YYYY-MM-DD HH:MM:SS".len(), "{d}");
        assert!(d.ends_with(":57"), "{d}");
    }
}
