//! The parser never panics: random bytes, random TOML-ish text, every
//! truncation of real runbooks, and byte flips all give Ok or located errors.

use drillbook::runbook::parse;
use proptest::prelude::*;

fn fixtures() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    [
        "tests/fixtures/valid.toml",
        "tests/fixtures/broken.toml",
        "tests/fixtures/crash.toml",
        "runbooks/backup-verification.toml",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(format!("{root}/{p}")).unwrap())
    .collect()
}

fn assert_located(text: &str) {
    if let Err(diagnostics) = parse("fuzz.toml", text) {
        assert!(!diagnostics.0.is_empty());
        let lines = text.split('\n').count();
        for diagnostic in &diagnostics.0 {
            assert!(diagnostic.line >= 1 && diagnostic.line <= lines.max(1), "{diagnostic:?}");
            assert!(diagnostic.column >= 1);
            assert!(!diagnostic.message.is_empty());
            let _ = diagnostic.to_string();
        }
    }
}

#[test]
fn every_truncation_of_the_fixtures_is_handled() {
    for text in fixtures() {
        for cut in 0..=text.len() {
            if text.is_char_boundary(cut) {
                assert_located(&text[..cut]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        assert_located(&text);
    }

    #[test]
    fn toml_shaped_text_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[runbook]".to_string()),
                Just("[[step]]".to_string()),
                Just("[vars.x]".to_string()),
                "[a-z_]{1,10} = \"[a-z{} .|']{0,20}\"",
                "[a-z_]{1,10} = [0-9]{1,12}",
                "[a-z_]{1,10} = \\[\"[a-z]{0,5}\", \\{ text = \"x\" \\}\\]",
                Just("kind = \"command\"".to_string()),
                Just("run = \"echo {{ x }}\"".to_string()),
                Just("capture = { name = \"c\", regex = \"(\" }".to_string()),
                Just("timeout = \"1h30\"".to_string()),
                Just("id = \"a\"".to_string()),
            ],
            0..30,
        )
    ) {
        assert_located(&lines.join("\n"));
    }

    #[test]
    fn mutated_fixtures_never_panic(index in 0usize..4, position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = fixtures()[index].clone().into_bytes();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            assert_located(&text);
        }
    }
}
