//! A damaged store is loud: a row changed behind the server's back makes it refuse to start,
//! naming the object, until it is started once with `--repair-store`.

use std::process::Command;
use std::time::Duration;

use drover_e2e::*;

#[test]
fn a_damaged_row_is_named_at_start_and_dropped_on_repair() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_alone(dir.path());
    server.apply(&process_pod("keep", "nowhere", "Never", "true", 1));
    server.apply(&process_pod("damaged", "nowhere", "Never", "true", 1));
    server.proc.signal("TERM");
    server.proc.wait_exit(Duration::from_secs(15));

    // One byte more in a row, still valid JSON: only its checksum can tell.
    let db = server.data_dir.join("drover.db");
    let status = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE objects SET spec = spec || ' ' WHERE name = 'damaged'\"); c.commit()",
        ])
        .arg(&db)
        .status()
        .expect("python3");
    assert!(status.success());

    let code = server.start_again_with(&[]);
    assert!(
        code.is_some_and(|c| c != 0),
        "the server started on a damaged store"
    );
    let log = server.proc.output();
    assert!(log.contains("Pod default/damaged is damaged"), "{log}");
    assert!(log.contains("--repair-store"), "{log}");

    assert_eq!(server.start_again_with(&["--repair-store"]), None);
    assert!(server.pod("damaged").is_none());
    assert!(server.pod("keep").is_some());
}
