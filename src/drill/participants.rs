//! Who takes part in a drill, as people write it: `Name:role`
//! (`--participant`), or a list `Name:role, Name` (the start screen).

/// The role of someone listed without one on the start screen.
pub const DEFAULT_ROLE: &str = "participant";

/// Why a participant entry cannot be read. Both name the entry, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParticipantError {
    #[error("`{0}` has no name before the colon")]
    NoName(String),
    #[error("`{0}` has no role after a colon")]
    NoRole(String),
}

/// `Name:role`, both trimmed. The name must not be empty; without a role
/// (no colon, or nothing after it) `default_role` is taken, or it is an
/// error when there is none.
pub fn parse_one(text: &str, default_role: Option<&str>) -> Result<(String, String), ParticipantError> {
    let (name, role) = match text.split_once(':') {
        Some((name, role)) => (name.trim(), role.trim()),
        None => (text.trim(), ""),
    };
    if name.is_empty() {
        return Err(ParticipantError::NoName(text.trim().to_string()));
    }
    match (role, default_role) {
        ("", Some(default)) => Ok((name.to_string(), default.to_string())),
        ("", None) => Err(ParticipantError::NoRole(text.trim().to_string())),
        (role, _) => Ok((name.to_string(), role.to_string())),
    }
}

/// A comma-separated list of `Name:role` (role optional, see [`DEFAULT_ROLE`]);
/// empty entries are ignored, so an empty text is nobody.
pub fn parse_list(text: &str) -> Result<Vec<(String, String)>, ParticipantError> {
    text.split(',').filter(|entry| !entry.trim().is_empty()).map(|entry| parse_one(entry, Some(DEFAULT_ROLE))).collect()
}

/// The list as [`parse_list`] reads it back.
pub fn format_list(participants: &[(String, String)]) -> String {
    participants.iter().map(|(name, role)| format!("{name}:{role}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str, role: &str) -> (String, String) {
        (name.to_string(), role.to_string())
    }

    #[test]
    fn one_participant_with_or_without_a_role() {
        assert_eq!(
            parse_one(" Alice Martin : incident commander ", None),
            Ok(pair("Alice Martin", "incident commander"))
        );
        assert!(parse_one("Alice", None).is_err(), "the command line asks for a role");
        assert_eq!(parse_one("Alice", Some(DEFAULT_ROLE)), Ok(pair("Alice", "participant")));
        assert_eq!(parse_one("Alice:", Some(DEFAULT_ROLE)), Ok(pair("Alice", "participant")));
        assert!(parse_one(" :scribe", Some(DEFAULT_ROLE)).unwrap_err().to_string().contains("no name"));
    }

    #[test]
    fn a_list_reads_back_what_it_was_written_from() {
        let list = vec![pair("Alice Martin", "incident commander"), pair("Bob", "scribe")];
        assert_eq!(parse_list(&format_list(&list)), Ok(list));
        assert_eq!(parse_list("Alice, , Bob:scribe,"), Ok(vec![pair("Alice", "participant"), pair("Bob", "scribe")]));
        assert_eq!(parse_list("  "), Ok(Vec::new()));
        assert!(parse_list("Alice, :scribe").is_err());
    }
}
