//! The one keymap: dispatch, the help overlay and the status bar hints all
//! come from [`BINDINGS`]. Actions are a serde enum so keys can be
//! configured later without touching `update`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    ForceQuit,
    Help,
    NextStep,
    PrevStep,
    SwitchFocus,
    Accept,
    Cancel,
    Yes,
    No,
    MarkDone,
    Skip,
    Retry,
    Abort,
    AddNote,
    OpenUrl,
    ToggleItem,
    NextItem,
    PrevItem,
    ToggleFollow,
    ToggleWrap,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    Top,
    Bottom,
    ScrollLeft,
    ScrollRight,
    Search,
    SearchNext,
    SearchPrev,
    NextField,
    PrevField,
    StartDrill,
    PodLogs,
    AddActionItem,
    /// Attach a file to the selected step as evidence.
    Attach,
    Debrief,
    /// Open the dialog of the question a step waits for.
    Answer,
    /// Stop the running step (asks first).
    StopStep,
    /// Mark a checklist item failed (with a note).
    FailItem,
}

impl Action {
    /// Whether the action changes the drill (journals something, runs or
    /// decides a step): refused when watching a drill driven elsewhere.
    pub fn changes_the_drill(self) -> bool {
        matches!(
            self,
            Action::Accept
                | Action::Yes
                | Action::No
                | Action::MarkDone
                | Action::Skip
                | Action::Retry
                | Action::Abort
                | Action::AddNote
                | Action::ToggleItem
                | Action::StartDrill
                | Action::PodLogs
                | Action::AddActionItem
                | Action::Attach
                | Action::Debrief
                | Action::Answer
                | Action::StopStep
                | Action::FailItem
        )
    }
}

/// Where a binding applies. Resolution tries the most specific context
/// first (a dialog, then the focused panel, then the step's kind, then
/// global), so `n` can be "next match" in a searched log and "note"
/// elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    Global,
    Start,
    Steps,
    Log,
    SearchedLog,
    Manual,
    Checklist,
    Confirm,
    Interrupted,
    Failure,
    Finished,
    Pods,
    Help,
    /// A step waits for an answer whose dialog was closed.
    Asked,
    /// A step's command or watch runs.
    Running,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Start => "Start screen",
            Context::Steps => "Step list",
            Context::Log => "Log pane",
            Context::SearchedLog => "Log pane with a search",
            Context::Manual => "Manual step",
            Context::Checklist => "Checklist",
            Context::Confirm => "Confirmation",
            Context::Interrupted => "Interrupted step",
            Context::Failure => "Failed step",
            Context::Finished => "Finished drill",
            Context::Pods => "Kubernetes step with pods",
            Context::Help => "Help",
            Context::Asked => "Step waiting for an answer",
            Context::Running => "Running step",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
    pub action: Action,
    pub description: &'static str,
    pub context: Context,
    /// Shown in the status bar hints (the rest only in help).
    pub hint: bool,
}

const fn key(code: KeyCode, action: Action, context: Context, description: &'static str, hint: bool) -> Binding {
    Binding { code, modifiers: KeyModifiers::NONE, action, description, context, hint }
}

const fn ctrl(c: char, action: Action, context: Context, description: &'static str) -> Binding {
    Binding { code: KeyCode::Char(c), modifiers: KeyModifiers::CONTROL, action, description, context, hint: false }
}

use Action as A;
use Context as C;
use KeyCode as K;

pub const BINDINGS: &[Binding] = &[
    // Dialogs first: they capture the keys while open. Esc closes a dialog
    // and returns to the step; nothing is decided by a single key.
    key(K::Char('y'), A::Yes, C::Confirm, "yes, run it", true),
    key(K::Enter, A::Accept, C::Confirm, "accept", true),
    key(K::Char('n'), A::No, C::Confirm, "no (with a reason)", true),
    key(K::Char('s'), A::Skip, C::Confirm, "skip (with a reason)", false),
    key(K::Esc, A::Cancel, C::Confirm, "close", true),
    key(K::Char('r'), A::Retry, C::Interrupted, "run it again", true),
    key(K::Char('d'), A::MarkDone, C::Interrupted, "mark done (with a note)", true),
    key(K::Char('s'), A::Skip, C::Interrupted, "skip (with a reason)", true),
    key(K::Esc, A::Cancel, C::Interrupted, "close", false),
    key(K::Char('r'), A::Retry, C::Failure, "retry", true),
    key(K::Char('s'), A::Skip, C::Failure, "skip (with a reason)", true),
    key(K::Char('a'), A::Abort, C::Failure, "abort (teardown runs)", true),
    key(K::Esc, A::Cancel, C::Failure, "close", false),
    key(K::Esc, A::Cancel, C::Help, "close help", true),
    key(K::Char('?'), A::Cancel, C::Help, "close help", false),
    key(K::Up, A::ScrollUp, C::Help, "scroll", false),
    key(K::Down, A::ScrollDown, C::Help, "scroll", false),
    // Start screen: typing goes to the focused field.
    key(K::Enter, A::StartDrill, C::Start, "start the drill (or pick a value)", true),
    key(K::Tab, A::NextField, C::Start, "next field", true),
    key(K::Down, A::NextField, C::Start, "next field", false),
    key(K::BackTab, A::PrevField, C::Start, "previous field", false),
    key(K::Up, A::PrevField, C::Start, "previous field", false),
    key(K::Esc, A::Quit, C::Start, "quit", true),
    // A step waiting for an answer (its dialog closed), a running step.
    key(K::Enter, A::Answer, C::Asked, "answer", true),
    key(K::Char('s'), A::Skip, C::Asked, "skip (with a reason)", true),
    key(K::Char('x'), A::StopStep, C::Running, "stop the step", true),
    // Step kinds.
    key(K::Enter, A::MarkDone, C::Manual, "mark the step done", true),
    key(K::Char('d'), A::MarkDone, C::Manual, "mark the step done", false),
    key(K::Char('s'), A::Skip, C::Manual, "skip (with a reason)", true),
    key(K::Char('o'), A::OpenUrl, C::Manual, "open the step's link", false),
    key(K::Char(' '), A::ToggleItem, C::Checklist, "tick / untick the item", true),
    key(K::Enter, A::MarkDone, C::Checklist, "finish the checklist", true),
    key(K::Char('f'), A::FailItem, C::Checklist, "the item failed (with a note)", true),
    key(K::Char('j'), A::NextItem, C::Checklist, "next item", false),
    key(K::Down, A::NextItem, C::Checklist, "next item", false),
    key(K::Up, A::PrevItem, C::Checklist, "previous item", false),
    key(K::Char('k'), A::PrevItem, C::Checklist, "previous item", false),
    key(K::Char('o'), A::OpenUrl, C::Checklist, "open the link in a browser", false),
    key(K::Char('s'), A::Skip, C::Checklist, "skip the checklist (with a reason)", false),
    // Finished drill.
    key(K::Char('d'), A::Debrief, C::Finished, "debrief: what went well, what to improve", true),
    key(K::Char('q'), A::Quit, C::Finished, "quit", true),
    // Log pane (searched log first: n/N move between matches there).
    key(K::Char('n'), A::SearchNext, C::SearchedLog, "next match", true),
    key(K::Char('N'), A::SearchPrev, C::SearchedLog, "previous match", true),
    key(K::Esc, A::Cancel, C::SearchedLog, "clear the search", false),
    key(K::Char('f'), A::ToggleFollow, C::Log, "follow output on/off", true),
    key(K::Char('/'), A::Search, C::Log, "search", true),
    key(K::Char('w'), A::ToggleWrap, C::Log, "wrap long lines on/off", false),
    key(K::Up, A::ScrollUp, C::Log, "scroll up", false),
    key(K::Char('k'), A::ScrollUp, C::Log, "scroll up", false),
    key(K::Down, A::ScrollDown, C::Log, "scroll down", false),
    key(K::Char('j'), A::ScrollDown, C::Log, "scroll down", false),
    key(K::PageUp, A::PageUp, C::Log, "page up", false),
    key(K::PageDown, A::PageDown, C::Log, "page down", false),
    key(K::Home, A::Top, C::Log, "first line", false),
    key(K::End, A::Bottom, C::Log, "last line (follow)", false),
    key(K::Left, A::ScrollLeft, C::Log, "scroll left", false),
    key(K::Right, A::ScrollRight, C::Log, "scroll right", false),
    // Step list.
    key(K::Down, A::NextStep, C::Steps, "next step", false),
    key(K::Char('j'), A::NextStep, C::Steps, "next step", false),
    key(K::Up, A::PrevStep, C::Steps, "previous step", false),
    key(K::Char('k'), A::PrevStep, C::Steps, "previous step", false),
    key(K::PageUp, A::PageUp, C::Steps, "scroll the log up", false),
    key(K::PageDown, A::PageDown, C::Steps, "scroll the log down", false),
    key(K::Char('f'), A::ToggleFollow, C::Steps, "follow output on/off", false),
    key(K::Char('/'), A::Search, C::Steps, "search the log", false),
    // A step with a pod table.
    key(K::Char('l'), A::PodLogs, C::Pods, "show a pod's logs", true),
    // Everywhere.
    key(K::Char('['), A::PrevStep, C::Global, "previous step (also inside a checklist)", false),
    key(K::Char(']'), A::NextStep, C::Global, "next step (also inside a checklist)", false),
    key(K::Tab, A::SwitchFocus, C::Global, "switch between steps and log", true),
    key(K::Char('n'), A::AddNote, C::Global, "add a note to the step", true),
    key(K::Char('a'), A::AddActionItem, C::Global, "add an action item for the report", false),
    key(K::Char('A'), A::Attach, C::Global, "attach a file to the step (a screenshot, an exported log)", false),
    key(K::Char('?'), A::Help, C::Global, "help", true),
    key(K::Char('q'), A::Quit, C::Global, "quit (asks if a step runs)", true),
    ctrl('c', A::ForceQuit, C::Global, "quit (twice: at once)"),
];

/// The action bound to `key` in the first context (in order) that binds it.
pub fn resolve(contexts: &[Context], key: KeyEvent) -> Option<Action> {
    let modifiers = key.modifiers - KeyModifiers::SHIFT;
    contexts.iter().find_map(|context| {
        BINDINGS
            .iter()
            .find(|b| b.context == *context && b.code == key.code && b.modifiers == modifiers)
            .map(|b| b.action)
    })
}

/// Key hints for the status bar: the hinted bindings of the active
/// contexts, most specific first, one per action.
pub fn hints(contexts: &[Context]) -> Vec<(String, &'static str)> {
    hints_where(contexts, |_| true)
}

/// Key hints when watching: only what does not change the drill.
pub fn read_only_hints(contexts: &[Context]) -> Vec<(String, &'static str)> {
    let mut hints = hints_where(contexts, |action| !action.changes_the_drill());
    // Leaving a watch interrupts nothing, so nothing is asked.
    let quit = BINDINGS.iter().filter(|b| b.action == Action::Quit).map(key_label).collect::<Vec<_>>();
    for (key, description) in &mut hints {
        if quit.contains(key) {
            *description = "quit (the drill goes on)";
        }
    }
    hints
}

fn hints_where(contexts: &[Context], keep: impl Fn(Action) -> bool) -> Vec<(String, &'static str)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for context in contexts {
        for binding in BINDINGS.iter().filter(|b| b.context == *context && b.hint && keep(b.action)) {
            if !seen.contains(&binding.action) && !out.iter().any(|(k, _)| *k == key_label(binding)) {
                seen.push(binding.action);
                out.push((key_label(binding), binding.description));
            }
        }
    }
    out
}

/// Hints fitted into `width` columns (each drawn as ` key description `):
/// `?` (help) and `q` (quit) always stay; the other descriptions are cut to
/// their first words, then the last of the other hints go, until it fits.
pub fn fit_hints(hints: Vec<(String, &'static str)>, width: usize) -> Vec<(String, String)> {
    let drawn = |hints: &[(String, String)]| {
        hints.iter().map(|(k, d)| k.chars().count() + d.chars().count() + 3).sum::<usize>()
    };
    let kept = |key: &str| key == "?" || key == "q";
    let mut fitted: Vec<(String, String)> = hints.into_iter().map(|(k, d)| (k, d.to_string())).collect();
    if drawn(&fitted) <= width {
        return fitted;
    }
    for (key, description) in &mut fitted {
        *description = short_description(description, kept(key));
    }
    while drawn(&fitted) > width {
        let Some(last_other) = fitted.iter().rposition(|(key, _)| !kept(key)) else { break };
        fitted.remove(last_other);
    }
    fitted
}

/// "mark the step done (with a note)" → "mark step done": no aside, no
/// articles, three words at most, no dangling "to" or "and"; help and quit
/// keep one word.
fn short_description(description: &str, one_word: bool) -> String {
    const ARTICLES: [&str; 3] = ["the", "a", "an"];
    const DANGLING: [&str; 6] = ["to", "and", "between", "with", "for", "of"];
    let plain = description.split(" (").next().unwrap_or(description);
    let words = if one_word { 1 } else { 3 };
    let mut kept: Vec<&str> = plain.split_whitespace().filter(|w| !ARTICLES.contains(w)).take(words).collect();
    while kept.len() > 1 && kept.last().is_some_and(|w| DANGLING.contains(w)) {
        kept.pop();
    }
    kept.join(" ")
}

/// Every binding grouped by context, for the help overlay.
pub fn help_sections() -> Vec<(Context, Vec<(String, &'static str)>)> {
    let mut sections: Vec<(Context, Vec<(String, &'static str)>)> = Vec::new();
    for binding in BINDINGS {
        let entry = (key_label(binding), binding.description);
        match sections.iter_mut().find(|(c, _)| *c == binding.context) {
            Some((_, entries)) => {
                if let Some(existing) = entries.iter_mut().find(|(_, d)| *d == binding.description) {
                    existing.0 = format!("{}/{}", existing.0, entry.0);
                } else {
                    entries.push(entry);
                }
            }
            None => sections.push((binding.context, vec![entry])),
        }
    }
    // Where the operator spends time first, dialogs after, global last.
    const ORDER: [Context; 14] = [
        Context::Steps,
        Context::Log,
        Context::SearchedLog,
        Context::Running,
        Context::Asked,
        Context::Manual,
        Context::Checklist,
        Context::Start,
        Context::Confirm,
        Context::Interrupted,
        Context::Failure,
        Context::Finished,
        Context::Help,
        Context::Global,
    ];
    sections.sort_by_key(|(c, _)| ORDER.iter().position(|o| o == c));
    sections
}

pub fn key_label(binding: &Binding) -> String {
    let base = match binding.code {
        K::Char(' ') => "space".to_string(),
        K::Char(c) => c.to_string(),
        K::Enter => "enter".into(),
        K::Esc => "esc".into(),
        K::Tab => "tab".into(),
        K::BackTab => "shift-tab".into(),
        K::Up => "↑".into(),
        K::Down => "↓".into(),
        K::Left => "←".into(),
        K::Right => "→".into(),
        K::PageUp => "pgup".into(),
        K::PageDown => "pgdn".into(),
        K::Home => "home".into(),
        K::End => "end".into(),
        other => format!("{other:?}").to_lowercase(),
    };
    if binding.modifiers.contains(KeyModifiers::CONTROL) { format!("ctrl-{base}") } else { base }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_most_specific_context_wins() {
        let searched = [Context::SearchedLog, Context::Log, Context::Global];
        assert_eq!(resolve(&searched, press(K::Char('n'))), Some(Action::SearchNext));
        let plain_log = [Context::Log, Context::Global];
        assert_eq!(resolve(&plain_log, press(K::Char('n'))), Some(Action::AddNote));
        assert_eq!(resolve(&[Context::Confirm], press(K::Char('q'))), None, "dialogs capture keys");
    }

    #[test]
    fn shifted_letters_and_control_keys_resolve() {
        let searched = [Context::SearchedLog, Context::Log, Context::Global];
        let shifted = KeyEvent::new(K::Char('N'), KeyModifiers::SHIFT);
        assert_eq!(resolve(&searched, shifted), Some(Action::SearchPrev));
        let ctrl_c = KeyEvent::new(K::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(resolve(&[Context::Global], ctrl_c), Some(Action::ForceQuit));
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                assert!(
                    !(a.context == b.context && a.code == b.code && a.modifiers == b.modifiers),
                    "{:?} bound twice in {:?}",
                    a.code,
                    a.context
                );
            }
        }
    }

    #[test]
    fn hints_and_help_come_from_the_table() {
        let hints = hints(&[Context::Checklist, Context::Global]);
        assert_eq!(hints[0], ("space".to_string(), "tick / untick the item"));
        assert!(hints.iter().any(|(k, _)| k == "?"));
        let help = help_sections();
        assert_eq!(help.last().map(|(c, _)| *c), Some(Context::Global));
        assert!(help.iter().any(|(c, entries)| *c == Context::Log && entries.iter().any(|(k, _)| k == "f")));
    }

    #[test]
    fn narrow_footers_keep_help_and_quit() {
        let hints = hints(&[Context::Checklist, Context::Steps, Context::Global]);
        let fitted = fit_hints(hints.clone(), 80);
        let width: usize = fitted.iter().map(|(k, d)| k.len() + d.chars().count() + 3).sum();
        assert!(width <= 80, "{fitted:?}");
        assert!(fitted.iter().any(|(k, _)| k == "?") && fitted.iter().any(|(k, _)| k == "q"), "{fitted:?}");
        assert_eq!(fitted[0].0, "space", "the most specific hints come first: {fitted:?}");
        assert_eq!(fit_hints(hints.clone(), 1000).len(), hints.len(), "nothing is cut when it fits");
    }

    #[test]
    fn actions_serialise_for_configuration() {
        assert_eq!(serde_json::to_string(&Action::ToggleFollow).unwrap(), "\"toggle_follow\"");
    }
}
