//! What the journal records. Each variant is one decision or fact, written
//! the moment it happens; [`super::state::DrillState`] is rebuilt from them.
//! Secrets never appear here: only their names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::evidence::Evidence;
use crate::runbook::template::CaptureValue;

/// Everything the report needs to know about a step without the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutline {
    pub id: String,
    pub title: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub always: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<String>,
    /// Captures of earlier steps it uses (journals before this was kept have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uses: Vec<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    Plain,
    Tui,
}

/// How a finished attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

/// Who or what decided to skip a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCause {
    /// Its `when` condition was false.
    Condition,
    /// The operator chose to skip it.
    Operator,
    /// Non-interactive run (`--plain --yes`): manual and checklist steps
    /// cannot be done by a machine, so they are recorded as skipped.
    NonInteractive,
    /// The operator did not confirm the step (with a reason).
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillOutcome {
    Completed,
    Failed,
    Aborted,
}

/// The enum is written once and derived three ways: `Event` serialises
/// internally tagged (`{"type": "note_added", ...}`), as every journal has
/// it; `ByTag` and `Buffered` decode into `Event` (serde's `remote`). An
/// internally tagged decoder buffers the whole object before it can pick the
/// variant, which made decoding most of a resume's time; journals always
/// write `type` first, so [`Event`]'s decoder reads it and hands the rest of
/// the object straight to the variant (`ByTag`), and falls back to buffering
/// (`Buffered`) only for an object whose first key is not `type`.
macro_rules! events {
    ($(#[$meta:meta])* pub enum Event { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum Event { $($body)* }

        #[derive(Deserialize)]
        #[serde(remote = "Event", rename_all = "snake_case")]
        #[allow(dead_code, clippy::large_enum_variant)]
        enum ByTag { $($body)* }

        #[derive(Deserialize)]
        #[serde(remote = "Event", tag = "type", rename_all = "snake_case")]
        #[allow(dead_code, clippy::large_enum_variant)]
        enum Buffered { $($body)* }
    };
}

events! {
// Events are written once and read once; boxing the big start event buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    DrillStarted {
        drill_id: String,
        runbook_id: String,
        runbook_title: String,
        runbook_path: String,
        runbook_sha256: String,
        operator: String,
        host: String,
        drillbook_version: String,
        #[serde(default)]
        training: bool,
        rto_target_secs: Option<u64>,
        rpo_target_secs: Option<u64>,
        /// The project the drill proves (the runbook's `project`, rendered).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        project: Option<String>,
        /// The runbook's `cadence` as written (`quarterly`, `30d`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cadence: Option<String>,
        /// Resolved values of every non-secret variable.
        vars: BTreeMap<String, String>,
        /// Names of secret variables (values are never journaled).
        secret_vars: Vec<String>,
        steps: Vec<StepOutline>,
    },
    /// A drillbook process opened the drill (first run or resume).
    SessionStarted {
        pid: u32,
        host: String,
        mode: SessionMode,
        resumed: bool,
        /// When the previous process was last known alive (its heartbeat in
        /// the lock file): the time with no drillbook process starts there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_alive_at: Option<jiff::Timestamp>,
        /// Who drives from here (journals before it was kept: the drill's operator).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
    },
    /// Another operator (or machine) took the drill over, through the shared archive.
    HandedOff {
        /// `operator@host` of the previous session.
        from: String,
        /// `operator@host` of this one.
        to: String,
        /// The previous holder's lease had expired and was taken over (confirmed by typing its name).
        #[serde(default)]
        taken_over: bool,
    },
    /// The process stopped working on the drill without finishing it.
    SessionEnded {
        reason: String,
    },
    StepStarted {
        step: String,
        attempt: u32,
        /// The command as run, with values filled in and secrets as `$ENV` references.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log: Option<String>,
    },
    StepConfirmed {
        step: String,
        how: String,
    },
    /// What a step decided to act on (the backup object, the image tag, the
    /// replicas it scales), journaled before acting so a resumed step acts on
    /// the same thing, or what it saw (DR's tags, a URL's answer). Journaled
    /// as `chosen` with a `choice`, the names it had before it was typed.
    #[serde(rename = "chosen")]
    Evidence {
        step: String,
        #[serde(rename = "choice")]
        evidence: Evidence,
    },
    CaptureSet {
        step: String,
        name: String,
        value: CaptureValue,
    },
    ChecklistTicked {
        step: String,
        item: usize,
        text: String,
        ticked: bool,
    },
    /// A checklist item did not work: the checklist fails when it is finished.
    ChecklistItemFailed {
        step: String,
        item: usize,
        text: String,
        note: String,
    },
    NoteAdded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        text: String,
    },
    StepFinished {
        step: String,
        attempt: u32,
        result: AttemptResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_sha256: Option<String>,
    },
    /// The attempt was cut short by the operator stopping drillbook (Ctrl-C,
    /// SIGTERM, SIGHUP); it is offered for re-run on resume.
    StepInterrupted {
        step: String,
        attempt: u32,
        reason: String,
    },
    StepSkipped {
        step: String,
        cause: SkipCause,
        reason: String,
    },
    /// The operator chose to run a failed or interrupted step again.
    StepReset {
        step: String,
        reason: String,
    },
    /// The operator declared the step done without (re-)running it.
    StepMarkedDone {
        step: String,
        note: String,
    },
    DrillFinished {
        outcome: DrillOutcome,
        reason: Option<String>,
    },
    /// Someone who took part in the drill (`--participant "Name:role"`).
    ParticipantAdded {
        name: String,
        role: String,
    },
    /// Follow-up work found by the drill; may be added after it ended
    /// (`drillbook action`).
    ActionItemAdded {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
    },
    /// The debrief after the drill; a later one replaces an earlier one.
    DebriefRecorded {
        went_well: String,
        to_improve: String,
    },
    /// A notification (Slack, webhook) that could not be delivered. Not a
    /// deviation: the drill went as it went; the team just did not hear of it.
    NotificationFailed {
        /// The target as shown (`https://host/…`): its URL is a secret.
        target: String,
        /// What it was about: `drill_started`, `step_failed`, `waiting`, `drill_finished`.
        what: String,
        error: String,
    },
    /// A file kept as evidence in the drill directory: a screenshot a
    /// `browser-check` took, or a file attached to a step (`drillbook
    /// attach`, `A` in the TUI). Its SHA-256 is journaled before anything
    /// refers to it, so the reports and the evidence pack can show it
    /// unaltered. Like a note, it may be added after the drill ended.
    FileAttached {
        step: String,
        /// Relative to the drill directory, `/`-separated: `evidence/STEP/NAME`.
        path: String,
        sha256: String,
        bytes: u64,
        origin: FileOrigin,
        /// What it shows: a screenshot's label, an attachment's original file name.
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Who attached it (the operator); none for what a step took itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(tagged::EventVisitor)
    }
}

/// [`Event`]'s decoder: `type` first, then the variant from the rest of the map.
mod tagged {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::value::{CowStrDeserializer, MapAccessDeserializer};
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use serde::forward_to_deserialize_any;

    use super::{Buffered, ByTag, Event};

    pub(super) struct EventVisitor;

    impl<'de> Visitor<'de> for EventVisitor {
        type Value = Event;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an event: a map with a `type`")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
            match map.next_key::<Key<'de>>()? {
                Some(Key::Type) => {
                    let tag = map.next_value::<Str<'de>>()?.0;
                    ByTag::deserialize(Rest { tag, map })
                }
                // Not as drillbook writes it (edited by hand?): read it whole.
                first => {
                    let mut object = serde_json::Map::new();
                    if let Some(key) = first {
                        let key = match key {
                            Key::Type => "type".to_owned(),
                            Key::Other(key) => key.into_owned(),
                        };
                        object.insert(key, map.next_value()?);
                    }
                    while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                        object.insert(key, value);
                    }
                    Buffered::deserialize(serde_json::Value::Object(object)).map_err(de::Error::custom)
                }
            }
        }
    }

    /// A map key: `type` or another (borrowed where the input allows).
    enum Key<'de> {
        Type,
        Other(Cow<'de, str>),
    }

    impl<'de> de::Deserialize<'de> for Key<'de> {
        fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let Str(key) = Str::deserialize(deserializer)?;
            Ok(if key == "type" { Key::Type } else { Key::Other(key) })
        }
    }

    /// A string, borrowed from the input where it can be.
    struct Str<'de>(Cow<'de, str>);

    impl<'de> de::Deserialize<'de> for Str<'de> {
        fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct StrVisitor;
            impl<'de> Visitor<'de> for StrVisitor {
                type Value = Str<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Owned(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                    Ok(Str(Cow::Owned(v)))
                }
            }
            deserializer.deserialize_str(StrVisitor)
        }
    }

    /// The rest of an event's map, seen as the externally tagged enum
    /// `{ tag: { rest } }` that [`ByTag`] decodes.
    struct Rest<'de, A> {
        tag: Cow<'de, str>,
        map: A,
    }

    impl<'de, A: MapAccess<'de>> de::Deserializer<'de> for Rest<'de, A> {
        type Error = A::Error;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
            visitor.visit_enum(self)
        }

        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct enum identifier ignored_any
        }
    }

    impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for Rest<'de, A> {
        type Error = A::Error;
        type Variant = Fields<A>;

        fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Fields<A>), A::Error> {
            let variant = seed.deserialize(CowStrDeserializer::<A::Error>::new(self.tag))?;
            Ok((variant, Fields(self.map)))
        }
    }

    /// The fields of the variant: what is left of the map.
    struct Fields<A>(A);

    impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for Fields<A> {
        type Error = A::Error;

        fn unit_variant(mut self) -> Result<(), A::Error> {
            while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(())
        }

        fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
            seed.deserialize(MapAccessDeserializer::new(self.0))
        }

        fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, A::Error> {
            Err(de::Error::custom("an event is never a tuple"))
        }

        fn struct_variant<V: Visitor<'de>>(
            self,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            visitor.visit_map(self.0)
        }
    }
}

/// Where an evidence file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOrigin {
    /// Taken by a step (a `browser-check` screenshot).
    Screenshot,
    /// Attached by someone (a screenshot taken by hand, an exported log).
    Attachment,
}

impl FileOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            FileOrigin::Screenshot => "screenshot",
            FileOrigin::Attachment => "attachment",
        }
    }
}

impl Event {
    /// Participants, action items and debriefs: facts about the drill, not
    /// steps of it. They may be written long after it ended (`drillbook
    /// action`), so they do not move the drill's or a session's clock.
    pub fn is_annotation(&self) -> bool {
        matches!(
            self,
            Event::ParticipantAdded { .. }
                | Event::ActionItemAdded { .. }
                | Event::DebriefRecorded { .. }
                | Event::FileAttached { origin: FileOrigin::Attachment, .. }
        )
    }

    /// The end of a step the operator did by hand (manual, checklist):
    /// no exit code, no log.
    pub fn finished_by_hand(
        step: &str,
        attempt: u32,
        result: AttemptResult,
        reason: Option<String>,
        duration_ms: u64,
    ) -> Self {
        Event::StepFinished {
            step: step.to_string(),
            attempt,
            result,
            exit_code: None,
            reason,
            duration_ms,
            log_sha256: None,
        }
    }
}
