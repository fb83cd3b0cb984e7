//! The store through its public API, on real files: round trips, reopening, expiry,
//! offence counting, caps, batches, damaged and foreign files, and a process killed
//! with SIGKILL while it commits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ipnet::IpNet;
use portcullis_store::{Ban, Lock, Offence, Snapshot, Store, StoreError, StoreLimits};
use proptest::prelude::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ban(n: &str, since: i64, until: i64) -> Ban {
    Ban {
        net: net(n),
        since,
        until,
        reason: format!("password spray from {n}"),
        kind: Some("password_spray".into()),
        manual: false,
        offences: 1,
    }
}

fn lock(account: &str, until: i64) -> Lock {
    Lock {
        account: account.into(),
        since: 0,
        until,
        reason: "brute force".into(),
        manual: true,
    }
}

fn snapshot(tag: u8) -> Snapshot {
    Snapshot {
        engine: vec![tag; 3000],
        positions: format!("positions {tag}").into_bytes(),
        watermark: 1_498_205_645 + i64::from(tag),
        saved_at: 1_700_000_000 + i64::from(tag),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    Fixture { _dir: dir, path }
}

fn nets(bans: &[Ban]) -> Vec<String> {
    bans.iter().map(|b| b.net.to_string()).collect()
}

#[test]
fn bans_are_keyed_by_the_normalised_network() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    store.put_ban(&ban("203.0.113.7/24", 10, 100)).unwrap();
    store.put_ban(&ban("2001:db8::1/128", 10, 100)).unwrap();
    store.put_ban(&ban("198.51.100.9/32", 10, 100)).unwrap();
    let got = store.bans().unwrap();
    assert_eq!(
        nets(&got),
        ["198.51.100.9/32", "2001:db8::1/128", "203.0.113.0/24"]
    );
    let want = Ban {
        net: net("203.0.113.0/24"),
        ..ban("203.0.113.7/24", 10, 100)
    };
    assert_eq!(got[2], want);
    // Another address in the same /24 names the same ban.
    let removed = store.remove_ban(&net("203.0.113.200/24")).unwrap();
    assert_eq!(removed.map(|b| b.net), Some(net("203.0.113.0/24")));
    assert_eq!(store.remove_ban(&net("203.0.113.0/24")).unwrap(), None);
    assert_eq!(store.bans().unwrap().len(), 2);
}

#[test]
fn everything_survives_closing_and_reopening_the_file() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    store.put_ban(&ban("203.0.113.7/32", 10, 100)).unwrap();
    store
        .put_lock(&lock("j.smith@parliament.example", 500))
        .unwrap();
    assert!(
        store
            .allow_add(&net("192.0.2.0/24"), "the VPN concentrator")
            .unwrap()
    );
    store
        .put_familiar("j.smith@parliament.example", &net("192.0.2.5/32"), 42, 4)
        .unwrap();
    store.save_snapshot(&snapshot(1)).unwrap();
    let sizes = store.sizes().unwrap();
    drop(store);

    let store = Store::open(&f.path).unwrap();
    assert_eq!(store.bans().unwrap(), [ban("203.0.113.7/32", 10, 100)]);
    assert_eq!(
        store.locks().unwrap(),
        [lock("j.smith@parliament.example", 500)]
    );
    assert_eq!(
        store.allowlist().unwrap(),
        [(net("192.0.2.0/24"), "the VPN concentrator".to_owned())]
    );
    assert_eq!(
        store.familiar("j.smith@parliament.example").unwrap(),
        [(net("192.0.2.5/32"), 42)]
    );
    assert_eq!(
        store.offence(&net("203.0.113.7/32")).unwrap(),
        Some(Offence { count: 1, last: 10 })
    );
    assert_eq!(store.load_snapshot().unwrap(), Some(snapshot(1)));
    assert_eq!(store.sizes().unwrap(), sizes);
}

#[test]
fn expiry_removes_exactly_what_is_due_soonest_first() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    for (i, until) in [300, 100, 200, 100, 400].into_iter().enumerate() {
        store
            .put_ban(&ban(&format!("10.0.0.{i}/32"), 0, until))
            .unwrap();
        store.put_lock(&lock(&format!("user{i}"), until)).unwrap();
    }
    assert!(store.expire_bans(99).unwrap().is_empty());
    let expired = store.expire_bans(200).unwrap();
    assert_eq!(
        nets(&expired),
        ["10.0.0.1/32", "10.0.0.3/32", "10.0.0.2/32"]
    );
    assert_eq!(nets(&store.bans().unwrap()), ["10.0.0.0/32", "10.0.0.4/32"]);
    assert!(store.expire_bans(200).unwrap().is_empty());

    let expired: Vec<String> = store
        .expire_locks(300)
        .unwrap()
        .into_iter()
        .map(|l| l.account)
        .collect();
    assert_eq!(expired, ["user1", "user3", "user2", "user0"]);
    assert_eq!(store.locks().unwrap(), [lock("user4", 400)]);
    assert_eq!(
        store.remove_lock("user4").unwrap(),
        Some(lock("user4", 400))
    );
    assert_eq!(store.remove_lock("user4").unwrap(), None);
    // A removed lock is gone from the expiry index too.
    assert!(store.expire_locks(i64::MAX).unwrap().is_empty());
}

#[test]
fn refreshing_a_ban_or_lock_moves_its_expiry() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    store.put_ban(&ban("10.0.0.1/32", 0, 100)).unwrap();
    store.put_ban(&ban("10.0.0.1/32", 50, 300)).unwrap();
    store.put_lock(&lock("a", 100)).unwrap();
    store.put_lock(&lock("a", 300)).unwrap();
    assert!(store.expire_bans(200).unwrap().is_empty());
    assert!(store.expire_locks(200).unwrap().is_empty());
    assert_eq!(
        store.expire_bans(300).unwrap(),
        [ban("10.0.0.1/32", 50, 300)]
    );
    assert_eq!(store.expire_locks(300).unwrap(), [lock("a", 300)]);
}

#[test]
fn offences_count_new_bans_not_refreshes_and_outlive_the_ban() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    let n = net("203.0.113.7/32");
    assert_eq!(store.offence(&n).unwrap(), None);
    store.put_ban(&ban("203.0.113.7/32", 10, 100)).unwrap();
    assert_eq!(
        store.offence(&n).unwrap(),
        Some(Offence { count: 1, last: 10 })
    );
    // A refresh of the current ban is the same offence.
    store.put_ban(&ban("203.0.113.7/32", 20, 200)).unwrap();
    assert_eq!(
        store.offence(&n).unwrap(),
        Some(Offence { count: 1, last: 10 })
    );
    // Lifted by hand, then banned again: a second offence.
    store.remove_ban(&n).unwrap();
    assert_eq!(store.offence(&n).unwrap().map(|o| o.count), Some(1));
    store.put_ban(&ban("203.0.113.7/32", 300, 400)).unwrap();
    assert_eq!(
        store.offence(&n).unwrap(),
        Some(Offence {
            count: 2,
            last: 300
        })
    );
    // Expired, then banned again: a third.
    store.expire_bans(400).unwrap();
    store.put_ban(&ban("203.0.113.7/32", 500, 600)).unwrap();
    assert_eq!(
        store.offence(&n).unwrap(),
        Some(Offence {
            count: 3,
            last: 500
        })
    );
    // Counted per normalised network.
    store.put_ban(&ban("203.0.113.7/24", 700, 800)).unwrap();
    assert_eq!(
        store
            .offence(&net("203.0.113.0/24"))
            .unwrap()
            .unwrap()
            .count,
        1
    );
    assert_eq!(store.sizes().unwrap().offences, 2);
}

#[test]
fn caps_refuse_new_entries_but_let_existing_ones_be_refreshed() {
    let f = fixture();
    let limits = StoreLimits {
        max_bans: 2,
        max_locks: 1,
        max_allowlist: 1,
        ..StoreLimits::default()
    };
    let store = Store::open_with(&f.path, limits).unwrap();
    store.put_ban(&ban("10.0.0.1/32", 0, 100)).unwrap();
    store.put_ban(&ban("10.0.0.2/32", 0, 100)).unwrap();
    let e = store.put_ban(&ban("10.0.0.3/32", 0, 100)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Full {
                table: "bans",
                cap: 2
            }
        ),
        "{e}"
    );
    // The refused ban left no trace, not even an offence.
    assert_eq!(store.offence(&net("10.0.0.3/32")).unwrap(), None);
    store.put_ban(&ban("10.0.0.2/32", 0, 900)).unwrap();
    store.remove_ban(&net("10.0.0.1/32")).unwrap();
    store.put_ban(&ban("10.0.0.3/32", 0, 100)).unwrap();

    store.put_lock(&lock("a", 100)).unwrap();
    store.put_lock(&lock("a", 200)).unwrap();
    assert!(matches!(
        store.put_lock(&lock("b", 100)),
        Err(StoreError::Full { table: "locks", .. })
    ));

    assert!(store.allow_add(&net("192.0.2.0/24"), "one").unwrap());
    assert!(!store.allow_add(&net("192.0.2.9/24"), "renamed").unwrap());
    assert!(matches!(
        store.allow_add(&net("198.51.100.0/24"), "two"),
        Err(StoreError::Full {
            table: "allowlist",
            ..
        })
    ));
    assert_eq!(
        store.allowlist().unwrap(),
        [(net("192.0.2.0/24"), "renamed".to_owned())]
    );
    assert!(store.allow_remove(&net("192.0.2.0/24")).unwrap());
    assert!(!store.allow_remove(&net("192.0.2.0/24")).unwrap());
}

#[test]
fn a_full_offence_table_forgets_the_network_whose_last_offence_is_oldest() {
    let f = fixture();
    let limits = StoreLimits {
        max_offences: 2,
        ..StoreLimits::default()
    };
    let store = Store::open_with(&f.path, limits).unwrap();
    store.put_ban(&ban("10.0.0.1/32", 30, 100)).unwrap();
    store.put_ban(&ban("10.0.0.2/32", 10, 100)).unwrap();
    store.put_ban(&ban("10.0.0.3/32", 20, 100)).unwrap();
    assert_eq!(store.offence(&net("10.0.0.2/32")).unwrap(), None);
    assert!(store.offence(&net("10.0.0.1/32")).unwrap().is_some());
    assert!(store.offence(&net("10.0.0.3/32")).unwrap().is_some());
    // The ban itself stays; only its history was forgotten.
    assert_eq!(store.bans().unwrap().len(), 3);
    assert_eq!(store.sizes().unwrap().offences, 2);
}

#[test]
fn familiar_sources_keep_the_most_recent_per_account_and_the_most_recent_accounts() {
    let f = fixture();
    let limits = StoreLimits {
        max_familiar_accounts: 2,
        ..StoreLimits::default()
    };
    let store = Store::open_with(&f.path, limits).unwrap();
    let a = "a@example.org";
    store.put_familiar(a, &net("10.0.0.1/32"), 10, 2).unwrap();
    store.put_familiar(a, &net("10.0.0.2/32"), 20, 2).unwrap();
    store.put_familiar(a, &net("10.0.0.3/32"), 30, 2).unwrap();
    assert_eq!(
        store.familiar(a).unwrap(),
        [(net("10.0.0.3/32"), 30), (net("10.0.0.2/32"), 20)]
    );
    // Seen again: it moves up, and a late report of an older login changes nothing.
    store.put_familiar(a, &net("10.0.0.2/32"), 40, 2).unwrap();
    store.put_familiar(a, &net("10.0.0.2/32"), 35, 2).unwrap();
    store.put_familiar(a, &net("10.0.0.9/24"), 5, 2).unwrap();
    assert_eq!(
        store.familiar(a).unwrap(),
        [(net("10.0.0.2/32"), 40), (net("10.0.0.3/32"), 30)]
    );
    store.put_familiar("b", &net("10.1.0.0/16"), 50, 2).unwrap();
    // A third account: `a` (last seen at 40) is forgotten, not `b` (50).
    store.put_familiar("c", &net("10.2.0.1/16"), 45, 2).unwrap();
    assert!(store.familiar(a).unwrap().is_empty());
    assert_eq!(store.familiar("b").unwrap(), [(net("10.1.0.0/16"), 50)]);
    assert_eq!(store.familiar("c").unwrap(), [(net("10.2.0.0/16"), 45)]);
    // An account already known takes no room.
    store.put_familiar("b", &net("10.3.0.0/16"), 60, 2).unwrap();
    assert_eq!(store.familiar("c").unwrap().len(), 1);
    let sizes = store.sizes().unwrap();
    assert_eq!((sizes.familiar_accounts, sizes.familiar_sources), (2, 3));
    // An account name is data, even when it looks like a key separator.
    store
        .put_familiar("b\0", &net("10.4.0.0/16"), 70, 2)
        .unwrap();
    assert_eq!(store.familiar("b").unwrap().len(), 2);
}

#[test]
fn over_long_account_names_are_refused() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    let long = "x".repeat(portcullis_store::MAX_ACCOUNT_LEN + 1);
    assert!(matches!(
        store.put_lock(&lock(&long, 1)),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put_familiar(&long, &net("10.0.0.1/32"), 1, 4),
        Err(StoreError::Invalid(_))
    ));
    let ok = "x".repeat(portcullis_store::MAX_ACCOUNT_LEN);
    store.put_lock(&lock(&ok, 1)).unwrap();
}

#[test]
fn a_batch_commits_all_of_its_changes_or_none() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    let e = store
        .write(|t| {
            t.put_ban(&ban("10.0.0.1/32", 0, 100))?;
            t.put_lock(&lock("a", 100))?;
            t.save_snapshot(&snapshot(1))?;
            Err::<(), _>(StoreError::Invalid("the daemon changed its mind".into()))
        })
        .unwrap_err();
    assert!(e.to_string().contains("changed its mind"));
    assert_eq!(store.sizes().unwrap(), Default::default());
    assert_eq!(store.load_snapshot().unwrap(), None);

    let offences = store
        .write(|t| {
            t.put_ban(&ban("10.0.0.1/32", 0, 100))?;
            // The transaction sees its own changes.
            assert_eq!(t.ban(&net("10.0.0.1/32"))?.map(|b| b.until), Some(100));
            t.put_lock(&lock("a", 100))?;
            assert!(t.lock("a")?.is_some());
            t.save_snapshot(&snapshot(2))?;
            t.offence(&net("10.0.0.1/32"))
        })
        .unwrap();
    assert_eq!(offences, Some(Offence { count: 1, last: 0 }));
    assert_eq!(store.bans().unwrap().len(), 1);
    assert_eq!(store.locks().unwrap().len(), 1);
    assert_eq!(store.load_snapshot().unwrap(), Some(snapshot(2)));
}

#[test]
fn a_refused_change_in_a_batch_leaves_the_rest_of_it_usable() {
    let f = fixture();
    let limits = StoreLimits {
        max_bans: 1,
        ..StoreLimits::default()
    };
    let store = Store::open_with(&f.path, limits).unwrap();
    let refused = store
        .write(|t| {
            t.put_ban(&ban("10.0.0.1/32", 0, 100))?;
            let refused = t.put_ban(&ban("10.0.0.2/32", 0, 100)).is_err();
            t.save_snapshot(&snapshot(3))?;
            Ok(refused)
        })
        .unwrap();
    assert!(refused);
    assert_eq!(nets(&store.bans().unwrap()), ["10.0.0.1/32"]);
    assert_eq!(store.sizes().unwrap().offences, 1);
    assert_eq!(store.load_snapshot().unwrap(), Some(snapshot(3)));
}

#[test]
fn the_snapshot_and_its_positions_are_replaced_together() {
    let f = fixture();
    let store = Store::open(&f.path).unwrap();
    assert_eq!(store.load_snapshot().unwrap(), None);
    store.save_snapshot(&snapshot(1)).unwrap();
    let small = Snapshot {
        engine: Vec::new(),
        positions: b"[]".to_vec(),
        watermark: -5,
        saved_at: 7,
    };
    store.save_snapshot(&small).unwrap();
    assert_eq!(store.load_snapshot().unwrap(), Some(small.clone()));
    assert_eq!(store.sizes().unwrap().snapshot_bytes, 2);
    // A batch that fails after saving a new snapshot keeps the old one, blobs and times.
    let _ = store.write(|t| {
        t.save_snapshot(&snapshot(9))?;
        t.put_lock(&lock(&"x".repeat(5000), 1))
    });
    assert_eq!(store.load_snapshot().unwrap(), Some(small));
}

#[test]
fn snapshots_larger_than_the_page_cache_are_saved_and_read_back_whole() {
    let f = fixture();
    let limits = StoreLimits {
        cache_bytes: 1 << 20,
        ..StoreLimits::default()
    };
    let big = |tag: u8| Snapshot {
        engine: (0..16 << 20).map(|i: u32| (i % 251) as u8 ^ tag).collect(),
        ..snapshot(tag)
    };
    let store = Store::open_with(&f.path, limits).unwrap();
    store.save_snapshot(&big(1)).unwrap();
    store.save_snapshot(&big(2)).unwrap();
    assert_eq!(store.load_snapshot().unwrap(), Some(big(2)));
    drop(store);
    let store = Store::open_with(&f.path, limits).unwrap();
    assert_eq!(store.load_snapshot().unwrap(), Some(big(2)));
}

#[test]
fn a_second_open_of_the_same_file_is_refused() {
    let f = fixture();
    let _store = Store::open(&f.path).unwrap();
    let e = Store::open(&f.path).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(e.to_string().contains("already open"), "{e}");
}

#[test]
fn files_that_are_not_a_store_are_refused_with_their_path() {
    let f = fixture();
    let mut junk = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        junk.push((x >> 16) as u8);
    }
    for bytes in [&b"hello, not a database\n"[..], &junk, &[0u8; 8192]] {
        std::fs::write(&f.path, bytes).unwrap();
        let e = Store::open(&f.path).unwrap_err();
        assert!(matches!(e, StoreError::Open { .. }), "{e}");
        assert!(e.to_string().contains(&*f.path.to_string_lossy()), "{e}");
    }
    let dir = f.path.parent().unwrap();
    assert!(Store::open(dir).is_err());
    assert!(Store::open(&dir.join("missing/state.redb")).is_err());
}

#[test]
fn another_programs_database_or_another_schema_version_is_refused() {
    let f = fixture();
    let users: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("users");
    {
        let db = redb::Database::create(&f.path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(users).unwrap().insert("alice", 1).unwrap();
        tx.commit().unwrap();
    }
    let e = Store::open(&f.path).unwrap_err();
    assert!(matches!(e, StoreError::Schema { .. }), "{e}");
    assert!(e.to_string().contains("not a Portcullis store"), "{e}");

    // A store from a later build.
    let g = fixture();
    drop(Store::open(&g.path).unwrap());
    let meta: redb::TableDefinition<&[u8], u64> = redb::TableDefinition::new("meta");
    {
        let db = redb::Database::create(&g.path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(meta)
            .unwrap()
            .insert(&b"schema_version"[..], 2)
            .unwrap();
        tx.commit().unwrap();
    }
    let e = Store::open(&g.path).unwrap_err();
    assert!(matches!(e, StoreError::Schema { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("schema version 2"), "{text}");
    assert!(text.contains(&*g.path.to_string_lossy()), "{text}");

    // A table of ours with other types.
    let h = fixture();
    let bad_meta: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("meta");
    {
        let db = redb::Database::create(&h.path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(bad_meta)
            .unwrap()
            .insert("schema_version", "1")
            .unwrap();
        tx.commit().unwrap();
    }
    let e = Store::open(&h.path).unwrap_err();
    assert!(e.to_string().contains("not a Portcullis store"), "{e}");
}

#[test]
fn a_damaged_file_is_an_error_never_a_panic() {
    let f = fixture();
    {
        let store = Store::open(&f.path).unwrap();
        store
            .write(|t| {
                for i in 0..300 {
                    t.put_ban(&ban(&format!("10.0.{}.{}/32", i / 256, i % 256), 0, i))?;
                }
                t.save_snapshot(&snapshot(4))
            })
            .unwrap();
    }
    let original = std::fs::read(&f.path).unwrap();
    let (mut opened, mut refused) = (0, 0);
    // Every page of the file, at two offsets within it.
    for at in (0..original.len()).step_by(4096 / 2 + 7) {
        let mut damaged = original.clone();
        damaged[at] ^= 0x5a;
        std::fs::write(&f.path, &damaged).unwrap();
        let result = Store::open(&f.path).and_then(|s| {
            s.bans()?;
            s.load_snapshot()?;
            s.expire_bans(100)
        });
        match result {
            Ok(_) => opened += 1,
            Err(_) => refused += 1,
        }
    }
    // Most flips land in unused space; those in the header and the live pages refuse.
    assert!(
        refused > 0 && opened > 0,
        "{refused} refused, {opened} opened"
    );
}

/// Bans the child commits, each with a snapshot naming it, in one transaction.
fn crash_child(path: &Path) {
    let store = Store::open(path).unwrap();
    let start = match store.load_snapshot().unwrap() {
        Some(s) => {
            String::from_utf8(s.positions)
                .unwrap()
                .parse::<u32>()
                .unwrap()
                + 1
        }
        None => 0,
    };
    for i in start..start + 100_000 {
        store
            .write(|t| {
                t.put_ban(&crash_ban(i))?;
                t.save_snapshot(&Snapshot {
                    engine: vec![i as u8; 5000],
                    positions: i.to_string().into_bytes(),
                    watermark: i64::from(i),
                    saved_at: 0,
                })
            })
            .unwrap();
        println!("committed {i}");
    }
}

fn crash_ban(i: u32) -> Ban {
    Ban {
        net: IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
            0x0a00_0000 + i,
        ))),
        ..ban("0.0.0.0/32", i64::from(i), i64::from(i) + 3600)
    }
}

const CRASH_CHILD: &str = "PORTCULLIS_STORE_CRASH_CHILD";

/// Kills the child even when the test fails before it does.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bans_committed_before_a_sigkill_survive_it() {
    if let Some(path) = std::env::var_os(CRASH_CHILD) {
        crash_child(Path::new(&path));
        return;
    }
    let f = fixture();
    let mut committed: BTreeSet<u32> = BTreeSet::new();
    // Killed twice: the second run resumes from what the first one left.
    for _ in 0..2 {
        let mut child = Killed(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "bans_committed_before_a_sigkill_survive_it",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CRASH_CHILD, &f.path)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = BufReader::new(child.0.stdout.take().unwrap());
        let mut seen = 0;
        for line in stdout.lines() {
            if let Some(i) = line.unwrap().strip_prefix("committed ") {
                committed.insert(i.parse().unwrap());
                seen += 1;
                if seen == 150 {
                    break;
                }
            }
        }
        assert_eq!(seen, 150, "the child stopped before it was killed");
        // SIGKILL, in the middle of the next commit or between two.
        drop(child);

        let store = Store::open(&f.path).unwrap();
        let present: BTreeSet<u32> = store
            .bans()
            .unwrap()
            .iter()
            .map(|b| match b.net.addr() {
                std::net::IpAddr::V4(a) => u32::from(a) - 0x0a00_0000,
                std::net::IpAddr::V6(_) => panic!("{b:?}"),
            })
            .collect();
        let missing: Vec<_> = committed.difference(&present).collect();
        assert!(missing.is_empty(), "committed but lost: {missing:?}");
        // Each ban was committed with a snapshot naming it: the last snapshot names the
        // last ban, and the bans are exactly those before it.
        let snap = store.load_snapshot().unwrap().unwrap();
        let last: u32 = String::from_utf8(snap.positions).unwrap().parse().unwrap();
        assert_eq!(snap.engine, vec![last as u8; 5000]);
        assert_eq!(present, (0..=last).collect::<BTreeSet<_>>());
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put { net: u8, since: i64, until: i64 },
    Remove { net: u8 },
    Expire { now: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, 0i64..50, 0i64..100).prop_map(|(net, since, until)| Op::Put { net, since, until }),
        1 => (0u8..6).prop_map(|net| Op::Remove { net }),
        1 => (0i64..100).prop_map(|now| Op::Expire { now }),
    ]
}

fn model_net(n: u8) -> IpNet {
    // Two prefixes per network, so that normalisation is exercised too.
    net(&format!("10.0.{n}.{}/24", n * 7))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Bans and offences against a plain model, with operations grouped into batches.
    #[test]
    fn bans_and_offences_follow_a_model(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..5), 1..8),
    ) {
        let f = fixture();
        let store = Store::open(&f.path).unwrap();
        let mut bans: BTreeMap<IpNet, (i64, i64)> = BTreeMap::new();
        let mut offences: BTreeMap<IpNet, Offence> = BTreeMap::new();
        for batch in &batches {
            let mut expired_want = Vec::new();
            for op in batch {
                match *op {
                    Op::Put { net, since, until } => {
                        let n = model_net(net).trunc();
                        if bans.insert(n, (since, until)).is_none() {
                            let o = offences.entry(n).or_insert(Offence { count: 0, last: since });
                            o.count += 1;
                            o.last = o.last.max(since);
                        }
                    }
                    Op::Remove { net } => {
                        bans.remove(&model_net(net).trunc());
                    }
                    Op::Expire { now } => {
                        let mut due: Vec<(i64, IpNet)> = bans
                            .iter()
                            .filter(|(_, (_, until))| *until <= now)
                            .map(|(n, (_, until))| (*until, *n))
                            .collect();
                        due.sort();
                        for (_, n) in &due {
                            bans.remove(n);
                        }
                        expired_want.extend(due.into_iter().map(|(_, n)| n));
                    }
                }
            }
            let expired_got = store.write(|t| {
                let mut expired = Vec::new();
                for op in batch {
                    match *op {
                        Op::Put { net, since, until } => {
                            t.put_ban(&ban(&model_net(net).to_string(), since, until))?
                        }
                        Op::Remove { net } => {
                            t.remove_ban(&model_net(net))?;
                        }
                        Op::Expire { now } => {
                            expired.extend(t.expire_bans(now)?.into_iter().map(|b| b.net))
                        }
                    }
                }
                Ok(expired)
            }).unwrap();
            prop_assert_eq!(expired_got, expired_want);
            let got: BTreeMap<IpNet, (i64, i64)> = store
                .bans()
                .unwrap()
                .into_iter()
                .map(|b| (b.net, (b.since, b.until)))
                .collect();
            prop_assert_eq!(&got, &bans);
            for n in 0..6 {
                let n = model_net(n).trunc();
                prop_assert_eq!(store.offence(&n).unwrap(), offences.get(&n).copied());
            }
        }
    }
}

#[test]
fn lockdown_and_familiar_sources_survive_reopening() {
    let f = fixture();
    {
        let s = Store::open(&f.path).unwrap();
        assert_eq!(s.lockdown().unwrap(), None);
        let on = portcullis_store::Lockdown {
            since: 100,
            until: None,
            automatic: false,
        };
        s.set_lockdown(Some(&on)).unwrap();
        s.write(|t| {
            t.put_familiar("alice", &net("192.0.2.0/24"), 50, 16)?;
            t.put_familiar("bob", &net("198.51.100.7/32"), 60, 16)
        })
        .unwrap();
    }
    let s = Store::open(&f.path).unwrap();
    let got = s.lockdown().unwrap().unwrap();
    assert_eq!((got.since, got.until, got.automatic), (100, None, false));
    let mut all = s.all_familiar(10).unwrap();
    all.sort();
    assert_eq!(
        all,
        vec![
            ("alice".to_string(), net("192.0.2.0/24"), 50),
            ("bob".to_string(), net("198.51.100.7/32"), 60)
        ]
    );
    assert_eq!(s.all_familiar(1).unwrap().len(), 1);
    let auto = portcullis_store::Lockdown {
        since: 200,
        until: Some(300),
        automatic: true,
    };
    s.set_lockdown(Some(&auto)).unwrap();
    assert_eq!(s.lockdown().unwrap(), Some(auto));
    s.set_lockdown(None).unwrap();
    assert_eq!(s.lockdown().unwrap(), None);
}

#[test]
fn familiar_logins_written_together_end_as_written_one_by_one() {
    // Accounts come and go past the cap within one batch; the same logins one at a
    // time must leave the same tables.
    let logins: Vec<(String, IpNet, i64)> = (0..60i64)
        .map(|i| {
            (
                format!("u{}@example.org", (i * 7) % 11),
                net(&format!("10.{}.{}.1/32", i % 5, i % 3)),
                1_000 + (i * 13) % 29,
            )
        })
        .collect();
    let limits = StoreLimits {
        max_familiar_accounts: 4,
        ..StoreLimits::default()
    };
    let one = fixture();
    let one_store = Store::open_with(&one.path, limits).unwrap();
    for (a, n, at) in &logins {
        one_store.put_familiar(a, n, *at, 3).unwrap();
    }
    let all = fixture();
    let all_store = Store::open_with(&all.path, limits).unwrap();
    all_store
        .write(|t| t.put_familiar_all(logins.iter().map(|(a, n, at)| (a.as_str(), n, *at)), 3))
        .unwrap();
    assert_eq!(
        all_store.all_familiar(1000).unwrap(),
        one_store.all_familiar(1000).unwrap()
    );
    let (s1, s2) = (one_store.sizes().unwrap(), all_store.sizes().unwrap());
    assert_eq!(
        (s1.familiar_accounts, s1.familiar_sources),
        (s2.familiar_accounts, s2.familiar_sources)
    );
    assert_eq!(s2.familiar_accounts, 4);
    // A name too long refuses the batch, whatever the cap.
    let long = "x".repeat(10_000);
    let n = net("10.9.9.9/32");
    assert!(
        all_store
            .write(|t| t.put_familiar_all([(long.as_str(), &n, 5)], 3))
            .is_err()
    );
}
