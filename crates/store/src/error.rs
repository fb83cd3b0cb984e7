//! What can go wrong with the store.

use std::error::Error;
use std::fmt;
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be opened as a database: it cannot be created or read, it is
    /// not a redb file, it is damaged, or another process has it open.
    Open {
        /// The store file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The file is a database, but not a store this build understands: another schema
    /// version, or another program's tables.
    Schema {
        /// The store file.
        path: PathBuf,
        /// What is different.
        detail: String,
    },
    /// A table is at its cap (see [`crate::StoreLimits`]); nothing was written.
    Full {
        /// The table.
        table: &'static str,
        /// Its cap.
        cap: u64,
    },
    /// An argument cannot be stored, such as an account name longer than
    /// [`crate::MAX_ACCOUNT_LEN`]; nothing was written.
    Invalid(String),
    /// A stored record does not decode: the file was changed by something else.
    Corrupt {
        /// The table.
        table: &'static str,
        /// The record's key, as text.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The database failed while reading or writing (I/O, a damaged page, a commit).
    Backend(Box<dyn Error + Send + Sync>),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, detail } => write!(f, "store {}: {detail}", path.display()),
            Self::Schema { path, detail } => write!(f, "store {}: {detail}", path.display()),
            Self::Full { table, cap } => {
                write!(f, "store: the {table} table is full ({cap} entries)")
            }
            Self::Invalid(detail) => write!(f, "store: {detail}"),
            Self::Corrupt { table, key, detail } => {
                write!(f, "store: record {key:?} in {table} is damaged: {detail}")
            }
            Self::Backend(e) => write!(f, "store: {e}"),
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Backend(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Backend(Box::new(e))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
