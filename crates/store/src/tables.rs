//! The tables in the file, their keys, and the record codec.
//!
//! Keys and values are byte strings: redb's `&str` type assumes valid UTF-8 and would
//! panic on a damaged file, bytes never do. A network's key is the text of its
//! normalised form (`203.0.113.0/24`), an account's is its name: readable in a dump.
//! Records are JSON. The `*_expiry` and `*_age` tables are indexes ordered by time,
//! kept in step with their record table in the same transaction, so that expiry and
//! eviction visit only what they remove.

use ipnet::IpNet;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// `"schema_version"` → [`SCHEMA_VERSION`].
pub(crate) const META: TableDefinition<&[u8], u64> = TableDefinition::new("meta");
pub(crate) const SCHEMA_KEY: &[u8] = b"schema_version";
/// Lockdown, when on: since (Unix seconds), until (`u64::MAX`: until switched off),
/// automatic (0 or 1). Absent when off. Kept in `meta` so that older files need no
/// new table.
pub(crate) const LOCKDOWN_SINCE: &[u8] = b"lockdown_since";
pub(crate) const LOCKDOWN_UNTIL: &[u8] = b"lockdown_until";
pub(crate) const LOCKDOWN_AUTOMATIC: &[u8] = b"lockdown_automatic";

/// Network → [`crate::Ban`].
pub(crate) const BANS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bans");
/// (until, network) → ().
pub(crate) const BAN_EXPIRY: TableDefinition<(i64, &[u8]), ()> = TableDefinition::new("ban_expiry");
/// Network → [`crate::Offence`].
pub(crate) const OFFENCES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("offences");
/// (last, network) → ().
pub(crate) const OFFENCE_AGE: TableDefinition<(i64, &[u8]), ()> =
    TableDefinition::new("offence_age");
/// Account → [`crate::Lock`].
pub(crate) const LOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("locks");
/// (until, account) → ().
pub(crate) const LOCK_EXPIRY: TableDefinition<(i64, &[u8]), ()> =
    TableDefinition::new("lock_expiry");
/// Network → [`Allowed`].
pub(crate) const ALLOWLIST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("allowlist");
/// (account, network) → when last seen.
pub(crate) const FAMILIAR: TableDefinition<(&[u8], &[u8]), i64> = TableDefinition::new("familiar");
/// Account → when any of its familiar sources was last seen.
pub(crate) const FAMILIAR_ACCOUNTS: TableDefinition<&[u8], i64> =
    TableDefinition::new("familiar_accounts");
/// (last seen, account) → ().
pub(crate) const FAMILIAR_AGE: TableDefinition<(i64, &[u8]), ()> =
    TableDefinition::new("familiar_age");
/// [`SNAPSHOT_ENGINE`], [`SNAPSHOT_POSITIONS`] → opaque bytes; [`SNAPSHOT_TIMES`] →
/// [`SnapshotTimes`].
pub(crate) const SNAPSHOT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("snapshot");
pub(crate) const SNAPSHOT_ENGINE: &[u8] = b"engine";
pub(crate) const SNAPSHOT_POSITIONS: &[u8] = b"positions";
pub(crate) const SNAPSHOT_TIMES: &[u8] = b"times";

/// A run-time allowlist entry as stored.
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct Allowed {
    pub net: IpNet,
    pub note: String,
}

/// The snapshot's two times, stored beside its blobs.
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct SnapshotTimes {
    pub watermark: i64,
    pub saved_at: i64,
}

/// The key of a network: the text of its normalised form.
pub(crate) fn net_key(net: &IpNet) -> String {
    net.trunc().to_string()
}

/// The network a key names.
pub(crate) fn parse_net(table: &'static str, key: &[u8]) -> Result<IpNet, StoreError> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(table, key, "not a network".into()))
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    // Serialising these plain structs cannot fail; an error would be a bug, not input.
    serde_json::to_vec(record).map_err(|e| StoreError::Backend(Box::new(e)))
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(table, key, e.to_string()))
}

pub(crate) fn corrupt(table: &'static str, key: &[u8], detail: String) -> StoreError {
    StoreError::Corrupt {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        detail,
    }
}

/// The record under `key`, decoded.
pub(crate) fn get_record<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &'static str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(value) => decode(name, key, value.value()).map(Some),
        None => Ok(None),
    }
}

/// Every record of a table, decoded, in key order.
pub(crate) fn all_records<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    name: &'static str,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        out.push(decode(name, key.value(), value.value())?);
    }
    Ok(out)
}

/// The entries of a time index with a time `<= now`, oldest first.
pub(crate) fn due(
    index: &impl ReadableTable<(i64, &'static [u8]), ()>,
    now: i64,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for entry in index.iter()? {
        let (key, _) = entry?;
        let (at, name) = key.value();
        if at > now {
            break;
        }
        out.push((at, name.to_vec()));
    }
    Ok(out)
}

/// An account's familiar sources (network key, last seen), in key order.
pub(crate) fn familiar_of(
    table: &impl ReadableTable<(&'static [u8], &'static [u8]), i64>,
    account: &[u8],
) -> Result<Vec<(Vec<u8>, i64)>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((account, &b""[..])..)? {
        let (key, value) = entry?;
        let (a, net) = key.value();
        if a != account {
            break;
        }
        out.push((net.to_vec(), value.value()));
    }
    Ok(out)
}

/// Checks a file's schema and creates any missing table. A file with no tables at all
/// is new and becomes a version-[`SCHEMA_VERSION`] store; a file with tables but no
/// `meta`, or another version, is refused.
pub(crate) fn prepare(tx: &WriteTransaction) -> Result<(), String> {
    let names: Vec<String> = tx
        .list_tables()
        .map_err(|e| e.to_string())?
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    let mismatch = |e: redb::TableError| match e {
        redb::TableError::TableTypeMismatch { .. } | redb::TableError::TableIsMultimap(_) => {
            format!("not a Portcullis store: {e}")
        }
        e => e.to_string(),
    };
    let mut meta = tx.open_table(META).map_err(mismatch)?;
    if names.is_empty() {
        meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
            .map_err(|e| e.to_string())?;
    } else {
        let version = meta
            .get(SCHEMA_KEY)
            .map_err(|e| e.to_string())?
            .map(|v| v.value());
        match version {
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "schema version {v}, this build reads version {SCHEMA_VERSION}"
                ));
            }
            None => return Err("not a Portcullis store (it has no schema version)".into()),
        }
    }
    drop(meta);
    macro_rules! create {
        ($($t:expr),*) => {$( tx.open_table($t).map_err(mismatch)?; )*};
    }
    create!(
        BANS,
        BAN_EXPIRY,
        OFFENCES,
        OFFENCE_AGE,
        LOCKS,
        LOCK_EXPIRY,
        ALLOWLIST,
        FAMILIAR,
        FAMILIAR_ACCOUNTS,
        FAMILIAR_AGE,
        SNAPSHOT
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_key_is_its_normalised_text_and_parses_back() {
        let net: IpNet = "203.0.113.77/24".parse().unwrap();
        assert_eq!(net_key(&net), "203.0.113.0/24");
        let v6: IpNet = "2001:db8::1:2/64".parse().unwrap();
        assert_eq!(net_key(&v6), "2001:db8::/64");
        assert_eq!(
            parse_net("bans", net_key(&v6).as_bytes()).unwrap(),
            v6.trunc()
        );
        assert!(matches!(
            parse_net("bans", b"\xffnot a net"),
            Err(StoreError::Corrupt { table: "bans", .. })
        ));
    }

    #[test]
    fn a_record_that_does_not_decode_is_corrupt_not_a_panic() {
        let e = decode::<crate::Ban>("bans", b"10.0.0.1/32", b"{\"net\":1}").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("10.0.0.1/32") && text.contains("bans"),
            "{text}"
        );
    }

    #[test]
    fn due_stops_at_the_first_entry_after_now_and_familiar_of_at_the_next_account() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut index = tx.open_table(BAN_EXPIRY).unwrap();
            for (at, name) in [(5, "b"), (-3, "a"), (5, "a"), (9, "c")] {
                index.insert((at, name.as_bytes()), ()).unwrap();
            }
            let got = due(&index, 5).unwrap();
            let want: Vec<(i64, Vec<u8>)> =
                vec![(-3, b"a".to_vec()), (5, b"a".to_vec()), (5, b"b".to_vec())];
            assert_eq!(got, want);

            let mut familiar = tx.open_table(FAMILIAR).unwrap();
            for (account, net, at) in [("a", "n1", 1), ("a\0", "n2", 2), ("ab", "n3", 3)] {
                familiar
                    .insert((account.as_bytes(), net.as_bytes()), at)
                    .unwrap();
            }
            assert_eq!(familiar_of(&familiar, b"a").unwrap(), [(b"n1".to_vec(), 1)]);
            assert!(familiar_of(&familiar, b"").unwrap().is_empty());
        }
        tx.abort().unwrap();
    }
}
