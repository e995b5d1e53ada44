//! PROTOCOL.md's error table and the server agree: every code the server can
//! send is in the table with the status the server answers it with, and the
//! table lists no code the server cannot send.

use std::collections::BTreeMap;

use push_core::wire::ErrorCode;

/// `(code, status)` rows of the table under `## Errors`.
fn documented() -> BTreeMap<String, u16> {
    let protocol = include_str!("../../PROTOCOL.md");
    let section = protocol
        .split("\n## Errors")
        .nth(1)
        .expect("PROTOCOL.md has an Errors section");
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(status), Some(code)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Ok(status) = status.parse::<u16>() else {
            continue; // the header and separator rows
        };
        let code = code.trim_matches('`').to_owned();
        assert!(
            rows.insert(code.clone(), status).is_none(),
            "{code} is listed twice"
        );
    }
    rows
}

#[test]
fn every_code_the_server_sends_is_documented_with_its_status_and_no_other() {
    let documented = documented();
    let sent: BTreeMap<String, u16> = ErrorCode::ALL
        .into_iter()
        .map(|code| {
            (
                code.as_str().to_owned(),
                push_tower::error::status(code).as_u16(),
            )
        })
        .collect();
    for (code, status) in &sent {
        assert_eq!(
            documented.get(code),
            Some(status),
            "PROTOCOL.md's error table must list `{code}` with status {status}"
        );
    }
    for code in documented.keys() {
        assert!(
            sent.contains_key(code),
            "PROTOCOL.md lists `{code}`, which no server error carries"
        );
    }
}
