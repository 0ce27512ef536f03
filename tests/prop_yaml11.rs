//! The YAML 1.1 reader answers every input with JSON or a one-line error, and never panics
//! (a panic inside the reader would come back as the "panicked" error, so that is checked).

use helm_safe_rollback::manifest::parse_documents;
use helm_safe_rollback::yaml11::documents;
use proptest::prelude::*;

fn assert_answers(text: &str) {
    if let Err(error) = documents(text) {
        let message = format!("{error:#}");
        assert!(!message.contains("panicked"), "{text:?}: {message}");
        assert!(!message.contains('\n'), "{text:?}: {message}");
    }
}

/// Text made of YAML's indicators, so that the parser's odd corners are reached often.
fn yamlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "- ",
        ": ",
        "? ",
        "\n",
        "  ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "<<: ",
        "!!str ",
        "!!int ",
        "!!float ",
        "!!binary ",
        "! ",
        "!x ",
        "'",
        "\"",
        "|\n",
        ">\n",
        "#",
        "---\n",
        "...\n",
        "%TAG !y! tag:yaml.org,2002:\n",
        "0644",
        "0x1F",
        "1e3",
        ".inf",
        "yes",
        "~",
        "1_0",
        "-.5",
        "9223372036854775808",
        "k",
        "v",
        "\t",
        "\\",
        "@",
        "`",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_text_gets_an_answer(text in "\\PC*") {
        assert_answers(&text);
    }

    #[test]
    fn yaml_shaped_text_gets_an_answer(text in yamlish()) {
        assert_answers(&text);
    }

    #[test]
    fn any_bytes_get_an_answer_from_the_manifest_reader(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(error) = parse_documents(&bytes) {
            let message = format!("{error:#}");
            prop_assert!(!message.contains("panicked"), "{}", message);
        }
    }

    #[test]
    fn plain_integers_and_octal_modes_are_numbers(int in any::<i64>(), mode in 0u32..0o7777) {
        let value = &documents(&format!("a: {int}\nb: 0{mode:o}\nc: '0{mode:o}'\n")).unwrap()[0];
        prop_assert_eq!(value["a"].as_i64(), Some(int));
        prop_assert_eq!(value["b"].as_u64(), Some(u64::from(mode)));
        let quoted = format!("0{mode:o}");
        prop_assert_eq!(value["c"].as_str(), Some(quoted.as_str()));
    }
}
