//! The file tailer, driven step by step: rotation, truncation, checkpoints, caps.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_sources::file::{self, FileConfig, StartAt, Tailer};
use portcullis_sources::{Line, Source};

fn config(dir: &Path, start_at: StartAt) -> FileConfig {
    FileConfig {
        include: vec![format!("{}/*.log*", dir.display())],
        checkpoint: Some(dir.join("checkpoint.json")),
        start_at,
        fingerprint_bytes: 16,
        max_line: 64,
        ..FileConfig::default()
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// One scan and read; the lines handed on, as text.
fn poll(t: &mut Tailer) -> Vec<String> {
    poll_lines(t)
        .into_iter()
        .map(|l| String::from_utf8(l.bytes).unwrap())
        .collect()
}

fn poll_lines(t: &mut Tailer) -> Vec<Line> {
    let mut out = Vec::new();
    t.poll_once(&mut |l| {
        out.push(l);
        Ok(())
    })
    .unwrap();
    out
}

fn lines(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix} line number {i}")).collect()
}

fn write_lines(path: &Path, ls: &[String]) {
    append(
        path,
        &ls.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
}

#[test]
fn start_at_end_skips_existing_lines_and_beginning_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("old", 0..3));
    append(&log, "partial old li");
    let mut t = Tailer::new(config(dir.path(), StartAt::End)).unwrap();
    assert!(poll(&mut t).is_empty());
    append(&log, "ne\n");
    write_lines(&log, &lines("new", 0..2));
    // The line that was partial at start-up was not yet written: it is handed on.
    let mut want = vec!["partial old line".to_owned()];
    want.extend(lines("new", 0..2));
    assert_eq!(poll(&mut t), want);

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("old", 0..3));
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    assert_eq!(poll(&mut t), lines("old", 0..3));
}

#[test]
fn partial_lines_wait_for_their_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    append(&log, "first li");
    assert!(poll(&mut t).is_empty());
    append(&log, "ne\nsecond");
    assert_eq!(poll(&mut t), ["first line"]);
    append(&log, "\n");
    let got = poll_lines(&mut t);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, b"second");
    assert_eq!(got[0].offset, Some(11));
    assert_eq!(got[0].source, Source::File(log.as_path().into()));
}

#[test]
fn oversized_lines_are_counted_and_skipped_even_before_their_newline() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    append(&log, &format!("ok one\n{}", "x".repeat(100)));
    assert_eq!(poll(&mut t), ["ok one"]);
    append(&log, &"y".repeat(100));
    assert!(poll(&mut t).is_empty());
    append(&log, &format!("z\nok two\n{}\nok three\n", "w".repeat(65)));
    assert_eq!(poll(&mut t), ["ok two", "ok three"]);
    assert_eq!(t.counters().oversized_lines.load(Ordering::Relaxed), 2);
}

#[test]
fn rename_rotation_reads_the_old_file_to_its_end_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("gen0", 0..2));
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    assert_eq!(poll(&mut t), lines("gen0", 0..2));
    // Written after the last poll, then rotated away before the next.
    write_lines(&log, &lines("gen0", 2..4));
    fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    write_lines(&log, &lines("gen1", 0..3));
    let mut want = lines("gen0", 2..4);
    want.extend(lines("gen1", 0..3));
    assert_eq!(poll(&mut t), want);
    assert_eq!(t.counters().rotations.load(Ordering::Relaxed), 1);
    write_lines(&log, &lines("gen1", 3..4));
    assert_eq!(poll(&mut t), lines("gen1", 3..4));
}

#[test]
fn a_file_renamed_out_of_the_patterns_is_still_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("gen0", 0..1));
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    assert_eq!(poll(&mut t), lines("gen0", 0..1));
    write_lines(&log, &lines("gen0", 1..2));
    let away = dir.path().join("old").join("mail");
    fs::create_dir(dir.path().join("old")).unwrap();
    fs::rename(&log, &away).unwrap();
    assert_eq!(poll(&mut t), lines("gen0", 1..2));
    // Closed now: later writes to it are not followed.
    write_lines(&away, &lines("gen0", 2..3));
    assert!(poll(&mut t).is_empty());
}

#[test]
fn copy_truncate_restarts_at_zero_and_takes_unread_lines_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("gen0", 0..2));
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    assert_eq!(poll(&mut t), lines("gen0", 0..2));
    write_lines(&log, &lines("gen0", 2..4));
    fs::copy(&log, dir.path().join("mail.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&log, &lines("gen1", 0..1));
    let mut got = poll(&mut t);
    got.sort();
    let mut want = lines("gen0", 2..4);
    want.extend(lines("gen1", 0..1));
    want.sort();
    assert_eq!(got, want);
    assert_eq!(t.counters().truncations.load(Ordering::Relaxed), 1);
    write_lines(&log, &lines("gen1", 1..2));
    assert_eq!(poll(&mut t), lines("gen1", 1..2));
}

#[test]
fn copy_truncate_without_a_visible_copy_reads_the_new_content_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("gen0", 0..3));
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    assert_eq!(poll(&mut t), lines("gen0", 0..3));
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&log, &lines("gen1", 0..1));
    assert_eq!(poll(&mut t), lines("gen1", 0..1));
    // Rewritten past the old offset between two polls: the fingerprint tells.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    write_lines(&log, &lines("gen2", 0..5));
    assert_eq!(poll(&mut t), lines("gen2", 0..5));
    assert_eq!(t.counters().truncations.load(Ordering::Relaxed), 2);
}

#[test]
fn restart_from_checkpoint_reads_exactly_the_unread_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let short = dir.path().join("b.log");
    write_lines(&log, &lines("a", 0..3));
    append(&short, "b0\n");
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    let mut first = poll(&mut t);
    first.sort();
    let mut want = lines("a", 0..3);
    want.push("b0".into());
    want.sort();
    assert_eq!(first, want);
    append(&log, "half a li");
    t.checkpoint().unwrap();
    drop(t);
    append(&log, "ne\n");
    write_lines(&log, &lines("a", 3..5));
    append(&short, "b1\n");
    // A file that appeared while the tailer was down is read from its start, even
    // with start_at = end: the checkpoint shows this is not a first start.
    let new = dir.path().join("c.log");
    append(&new, "c0\n");
    let mut t = Tailer::new(config(dir.path(), StartAt::End)).unwrap();
    let mut got = poll(&mut t);
    got.sort();
    let mut want = vec!["half a line".to_owned(), "b1".into(), "c0".into()];
    want.extend(lines("a", 3..5));
    want.sort();
    assert_eq!(got, want);
    assert!(poll(&mut t).is_empty());
}

#[test]
fn gzip_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("mail.log.2.gz"), "not text\n");
    let mut t = Tailer::new(config(dir.path(), StartAt::Beginning)).unwrap();
    assert!(poll(&mut t).is_empty());
    assert_eq!(t.counters().files.load(Ordering::Relaxed), 0);
}

#[test]
fn a_bad_pattern_or_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), StartAt::End);
    c.include = vec!["[".into()];
    assert!(Tailer::new(c).unwrap_err().to_string().contains("pattern"));
    fs::write(dir.path().join("checkpoint.json"), "garbage").unwrap();
    let e = Tailer::new(config(dir.path(), StartAt::End)).unwrap_err();
    assert!(e.to_string().contains("checkpoint"), "{e}");
}

#[test]
fn the_thread_sends_lines_waits_on_a_full_channel_and_checkpoints_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_lines(&log, &lines("a", 0..20));
    let mut c = config(dir.path(), StartAt::Beginning);
    c.poll_interval = Duration::from_millis(5);
    c.glob_interval = Duration::from_millis(5);
    // Capacity 2 for 20 lines: the tailer must wait, not drop.
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let source = file::spawn(c, tx).unwrap();
    let mut got = Vec::new();
    while got.len() < 20 {
        let line = rx.blocking_recv().unwrap();
        got.push(String::from_utf8(line.bytes).unwrap());
    }
    assert_eq!(got, lines("a", 0..20));
    let counters = std::sync::Arc::clone(source.counters());
    source.stop().unwrap();
    assert_eq!(counters.lines.load(Ordering::Relaxed), 20);
    // The sender is gone: the channel is closed and empty.
    assert!(rx.blocking_recv().is_none());
    let cp = fs::read_to_string(dir.path().join("checkpoint.json")).unwrap();
    let len = fs::metadata(&log).unwrap().len();
    assert!(cp.contains(&format!("\"offset\":{len}")), "{cp}");
}
