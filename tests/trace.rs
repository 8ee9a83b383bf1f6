//! `hvsim run --trace`: categories, text and JSON lines with stable field names, and the
//! `--trace-from`/`--trace-until` window on the virtual clock.

use std::path::PathBuf;
use std::process::Command;

fn hello(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hvsim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join(format!("{name}.img"));
    let st = Command::new(env!("CARGO_BIN_EXE_hvsim"))
        .args(["example", "hello", "-o"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    img
}

fn trace(name: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hvsim"))
        .arg("run")
        .arg(hello(name))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn io_records_in_text_name_port_size_and_value() {
    let err = trace("io_text", &["--trace", "io"]);
    // The example prints "Hello" on COM1: 'H' = 0x48 goes out to port 0x3f8.
    assert!(
        err.lines().any(|l| l.starts_with("io") && l.contains("out port 0x03f8 size 1 <- 0x48")),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("insn")), "insn records without --trace insn");
}

#[test]
fn json_lines_have_stable_field_names() {
    let err = trace("io_json", &["--trace", "io", "--trace-format", "json"]);
    let line = err.lines().find(|l| l.contains("\"dir\":\"out\"")).expect(&err);
    for field in [
        "\"target\":\"hvsim::io\"",
        "\"insn\":",
        "\"vcpu\":0",
        "\"port\":1016",
        "\"size\":1",
        "\"value\":72",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(line.starts_with('{') && line.ends_with('}'));
}

#[test]
fn the_window_limits_records_to_clock_values() {
    let err = trace("window", &["--trace", "insn", "--trace-from", "100", "--trace-until", "110"]);
    let counts: Vec<u64> = err
        .lines()
        .filter(|l| l.starts_with("insn"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts, (100..110).collect::<Vec<u64>>(), "{err}");
}
