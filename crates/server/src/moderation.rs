//! Rooms have owners: who may moderate a room, what each action does to the room's rules, and how it
//! reads in the history. Pure — the hub holds the rules and applies them; the store keeps them.
//!
//! The first owner of a name to create a room owns it (a room a guest creates has no owner); the lobby
//! belongs to the server's admins. Owners, operators and admins moderate; moderating never reaches the
//! room's owner or an admin.

use std::collections::{BTreeMap, BTreeSet};

use natter_i18n::Lang;
use natter_proto::frame::RoomEvent;
use serde::{Deserialize, Serialize};

/// A room's rules. Names are folded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Who set the topic, and when (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_at: Option<i64>,
    #[serde(default)]
    pub invite_only: bool,
    #[serde(default)]
    pub moderated: bool,
    #[serde(default)]
    pub ops: BTreeSet<String>,
    #[serde(default)]
    pub voiced: BTreeSet<String>,
    #[serde(default)]
    pub bans: BTreeSet<String>,
    #[serde(default)]
    pub invites: BTreeSet<String>,
    /// Muted until (milliseconds since the epoch).
    #[serde(default)]
    pub mutes: BTreeMap<String, i64>,
}

/// A moderation request, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Op,
    Deop,
    Voice,
    Devoice,
    Kick,
    Ban,
    Unban,
    Mute(u32),
    Unmute,
    Invite,
    Topic(String),
    InviteOnly(bool),
    Moderated(bool),
}

/// Longest mute, in minutes (a week), and the default.
pub const MAX_MUTE_MINUTES: u32 = 7 * 24 * 60;
pub const DEFAULT_MUTE_MINUTES: u32 = 10;
/// Longest topic, in bytes.
pub const MAX_TOPIC: usize = 500;

impl Action {
    /// The action of a `moderate` frame; `None` if `action` is unknown or lacks what it needs.
    pub fn parse(
        action: &str,
        text: Option<&str>,
        minutes: Option<u32>,
        on: Option<bool>,
    ) -> Option<Self> {
        Some(match action {
            "op" => Action::Op,
            "deop" => Action::Deop,
            "voice" => Action::Voice,
            "devoice" => Action::Devoice,
            "kick" => Action::Kick,
            "ban" => Action::Ban,
            "unban" => Action::Unban,
            "mute" => Action::Mute(
                minutes
                    .unwrap_or(DEFAULT_MUTE_MINUTES)
                    .clamp(1, MAX_MUTE_MINUTES),
            ),
            "unmute" => Action::Unmute,
            "invite" => Action::Invite,
            "topic" => Action::Topic(text.unwrap_or("").trim().to_owned()),
            "invite_only" => Action::InviteOnly(on?),
            "moderated" => Action::Moderated(on?),
            _ => return None,
        })
    }

    /// The wire name (`moderate`'s `action`, an event's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Op => "op",
            Action::Deop => "deop",
            Action::Voice => "voice",
            Action::Devoice => "devoice",
            Action::Kick => "kick",
            Action::Ban => "ban",
            Action::Unban => "unban",
            Action::Mute(_) => "mute",
            Action::Unmute => "unmute",
            Action::Invite => "invite",
            Action::Topic(_) => "topic",
            Action::InviteOnly(_) => "invite_only",
            Action::Moderated(_) => "moderated",
        }
    }

    /// Whether the action concerns someone (`name` is required).
    pub fn needs_name(&self) -> bool {
        !matches!(
            self,
            Action::Topic(_) | Action::InviteOnly(_) | Action::Moderated(_)
        )
    }
}

impl RoomRules {
    /// Whether `who` (folded) may moderate the room.
    pub fn is_op(&self, who: &str, admin: bool) -> bool {
        admin || self.owner.as_deref() == Some(who) || self.ops.contains(who)
    }

    /// Why `who` may not say something in the room now, if they may not: `Some(None)` moderated and
    /// no voice, `Some(Some(until_ms))` muted.
    pub fn silenced(&self, who: &str, admin: bool, now_ms: i64) -> Option<Option<i64>> {
        if self.is_op(who, admin) {
            return None;
        }
        if let Some(until) = self.mutes.get(who).filter(|until| **until > now_ms) {
            return Some(Some(*until));
        }
        (self.moderated && !self.voiced.contains(who)).then_some(None)
    }

    /// Why `who` may not join, if they may not.
    pub fn keeps_out(&self, who: &str, admin: bool) -> Option<natter_proto::ErrorCode> {
        if self.is_op(who, admin) {
            return None;
        }
        if self.bans.contains(who) {
            return Some(natter_proto::ErrorCode::Banned);
        }
        (self.invite_only && !self.invites.contains(who))
            .then_some(natter_proto::ErrorCode::InviteOnly)
    }

    /// Applies `action` (on `target`, folded, when it needs one) at `now_ms`.
    pub fn apply(&mut self, action: &Action, target: Option<&str>, now_ms: i64) {
        let t = || target.unwrap_or_default().to_owned();
        match action {
            Action::Op => {
                self.ops.insert(t());
            }
            Action::Deop => {
                self.ops.remove(&t());
            }
            Action::Voice => {
                self.voiced.insert(t());
            }
            Action::Devoice => {
                self.voiced.remove(&t());
            }
            Action::Kick => {}
            Action::Ban => {
                self.bans.insert(t());
                self.ops.remove(&t());
                self.invites.remove(&t());
            }
            Action::Unban => {
                self.bans.remove(&t());
            }
            Action::Mute(minutes) => {
                self.mutes
                    .insert(t(), now_ms + i64::from(*minutes) * 60_000);
            }
            Action::Unmute => {
                self.mutes.remove(&t());
            }
            Action::Invite => {
                self.invites.insert(t());
            }
            Action::Topic(topic) => {
                self.topic = (!topic.is_empty()).then(|| topic.clone());
            }
            Action::InviteOnly(on) => self.invite_only = *on,
            Action::Moderated(on) => self.moderated = *on,
        }
        self.mutes.retain(|_, until| *until > now_ms);
    }
}

/// The event an action leaves in the room's history: who it concerned and the English words for clients
/// that do not know events.
pub fn event(action: &Action, target: Option<&str>, reason: Option<&str>) -> (RoomEvent, String) {
    let event = RoomEvent {
        kind: action.kind().to_owned(),
        name: target.map(str::to_owned),
        text: match action {
            Action::Topic(topic) => Some(topic.clone()),
            _ => reason.filter(|r| !r.is_empty()).map(str::to_owned),
        },
        minutes: match action {
            Action::Mute(minutes) => Some(*minutes),
            _ => None,
        },
        on: match action {
            Action::InviteOnly(on) | Action::Moderated(on) => Some(*on),
            _ => None,
        },
    };
    let text = describe(Lang::En, &event);
    (event, text)
}

pub use natter_proto::text::describe_event as describe;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_moderate_and_rules_keep_people_out_or_quiet() {
        let mut rules = RoomRules {
            owner: Some("alice".into()),
            ..RoomRules::default()
        };
        assert!(rules.is_op("alice", false));
        assert!(!rules.is_op("bob", false));
        assert!(rules.is_op("bob", true), "admins moderate everywhere");
        rules.apply(&Action::Op, Some("carol"), 0);
        assert!(rules.is_op("carol", false));
        rules.apply(&Action::Mute(10), Some("bob"), 1_000);
        assert_eq!(rules.silenced("bob", false, 2_000), Some(Some(601_000)));
        assert_eq!(rules.silenced("bob", false, 700_000), None, "a mute ends");
        rules.apply(&Action::Moderated(true), None, 0);
        assert_eq!(rules.silenced("dave", false, 0), Some(None));
        rules.apply(&Action::Voice, Some("dave"), 0);
        assert_eq!(rules.silenced("dave", false, 0), None);
        rules.apply(&Action::Ban, Some("eve"), 0);
        assert_eq!(
            rules.keeps_out("eve", false),
            Some(natter_proto::ErrorCode::Banned)
        );
        rules.apply(&Action::InviteOnly(true), None, 0);
        assert_eq!(
            rules.keeps_out("frank", false),
            Some(natter_proto::ErrorCode::InviteOnly)
        );
        rules.apply(&Action::Invite, Some("frank"), 0);
        assert_eq!(rules.keeps_out("frank", false), None);
        let (event, text) = event(&Action::Kick, Some("bob"), Some("spam"));
        assert_eq!(text, "kicked bob (spam)");
        assert_eq!(describe(Lang::ZhCn, &event), "把 bob 请出了房间（spam）");
        assert_eq!(
            Action::parse("mute", None, Some(999_999), None),
            Some(Action::Mute(MAX_MUTE_MINUTES))
        );
        assert_eq!(Action::parse("invite_only", None, None, None), None);
    }
}
