//! The documentation that must stay in step: README.md and its Chinese translation README.zh-CN.md.

use std::path::Path;

/// The headings of a Markdown file, outside fenced code: (level, text).
fn headings(markdown: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let level = line.chars().take_while(|&c| c == '#').count();
        if level > 0 && line[level..].starts_with(' ') {
            out.push((level, line[level..].trim().to_owned()));
        }
    }
    out
}

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Issue 18: every heading of README.md has its counterpart in README.zh-CN.md, in the same order and at
/// the same level: each Chinese heading ends with `<!-- English heading -->`. A section added to one
/// README and not the other fails here.
#[test]
fn the_chinese_readme_has_every_section_of_the_english_one() {
    let english = headings(&read("README.md"));
    let chinese: Vec<(usize, String)> = headings(&read("README.zh-CN.md"))
        .into_iter()
        .map(|(level, text)| {
            let counterpart = text
                .rsplit_once("<!--")
                .and_then(|(_, c)| c.strip_suffix("-->"))
                .unwrap_or_else(|| panic!("README.zh-CN.md: {text:?} names no English heading"))
                .trim()
                .to_owned();
            (level, counterpart)
        })
        .collect();
    assert!(english.len() > 8, "{english:?}");
    let missing: Vec<_> = english.iter().filter(|h| !chinese.contains(h)).collect();
    let extra: Vec<_> = chinese.iter().filter(|h| !english.contains(h)).collect();
    assert!(missing.is_empty(), "README.zh-CN.md lacks {missing:?}");
    assert!(extra.is_empty(), "README.md lacks {extra:?}");
    assert_eq!(english, chinese, "the sections are in another order");
}

#[test]
fn the_readme_links_its_translation_at_the_top() {
    let readme = read("README.md");
    let top: Vec<&str> = readme.lines().take(4).collect();
    assert!(
        top.iter().any(|l| l.contains("(README.zh-CN.md)")),
        "{top:?}"
    );
}

/// PROTOCOL.md documents every frame type and every error code the code knows: a type or code added to
/// `natter_proto` without its line in the specification fails here.
#[test]
fn the_protocol_documents_every_frame_type_and_error_code() {
    let spec = read("PROTOCOL.md");
    for ty in natter_proto::frame::CLIENT_TYPES {
        assert!(
            spec.contains(&format!("`{ty}`")),
            "PROTOCOL.md lacks the client frame {ty}"
        );
    }
    for code in natter_proto::frame::ALL_CODES {
        let row = format!("| `{}` |", code.as_str());
        assert!(
            spec.contains(&row),
            "PROTOCOL.md lacks the error code {}",
            code.as_str()
        );
    }
    // Every server frame type, from the serde names of examples the specification gives.
    for example in [
        r#"{"type":"upload_ready","id":"9","token":"t","offset":1048576,"size":2516582}"#,
        r#"{"type":"download_ready","id":"10","token":"t","file":{"id":17,"name":"report.pdf","size":2516582,"mime":"application/pdf","sha256":"9f86"}}"#,
        r#"{"type":"upload_at","offset":5}"#,
        r#"{"type":"uploaded","file":17}"#,
        r#"{"type":"sending","file":17,"offset":0,"size":2516582,"sha256":"9f86"}"#,
        r#"{"type":"message","seq":17,"ts":"2026-11-27T16:40:01.000Z","room":"lobby","from":"alice","text":"shared report.pdf (2.4 MiB) — /get 17","file":{"id":17,"name":"report.pdf","size":2516582,"mime":"application/pdf","sha256":"9f86","expired":true}}"#,
    ] {
        let frame: natter_proto::ServerFrame = serde_json::from_str(example).unwrap();
        let ty = serde_json::to_value(&frame).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(spec.contains(&format!("`{ty}`")), "PROTOCOL.md lacks {ty}");
    }
}

/// Issue 16: docs/OPERATIONS.md lists every key of the config file, its default and when a change takes
/// effect — exactly what `natter config reference` prints from the flags' definitions, so a new flag, a
/// changed default or a key made live shows up here as a failure until the document says it too.
#[test]
fn operations_lists_every_config_key_as_the_binary_defines_it() {
    let reference = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["config", "reference"])
        .output()
        .unwrap();
    assert!(reference.status.success());
    let reference = String::from_utf8(reference.stdout).unwrap();
    assert!(reference.lines().count() > 40, "{reference}");
    assert!(
        read("docs/OPERATIONS.md").contains(&reference),
        "docs/OPERATIONS.md's table of keys differs from `natter config reference`:\n{reference}"
    );
}
