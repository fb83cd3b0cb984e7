//! Portcullis' password audit and password-change check.
//!
//! Finds the weak, breached, shared, empty and plaintext-stored passwords in a hash
//! export (pwdump/secretsdump, Dovecot passwd-file, htpasswd, shadow), in the spirit
//! of DSInternals' `Test-PasswordQuality`, and checks a password a user proposes
//! against NIST SP 800-63B revision 4. It does no I/O of its own: the binary reads the
//! files, reads the clock (a time budget arrives as a deadline) and prints.
//!
//! It is not a password cracker: guessing is bounded by a candidate cap per hash and
//! by the time budget, and aims at the passwords an attacker tries first.
//!
//! # Layout
//!
//! - [`line`]: one line of an export → an account, a skip or a rejection, each with a
//!   reason; the format is detected per line.
//! - [`scheme`]: storage schemes: parsing a stored hash and verifying a guess.
//! - [`lookup`]: the [`BreachLookup`] trait, the in-memory [`HashSetLookup`] and
//!   [`LookupChain`]; SHA-1 and NT hashing of plaintexts.
//! - [`words`]: the built-in common-password list, blocklists and Lithnet-style
//!   normalisation (leetspeak, affixes), user-name parts.
//! - [`candidates`]: the guesses for salted hashes, in order, under a cap.
//! - [`audit`]: [`Inventory`] (accounts from lines) and [`Audit`] (recovery on all
//!   cores within a deadline, breach lookups, shared-password groups, findings).
//! - [`report`]: the versioned report, its text and CSV forms.
//! - [`password`]: the NIST password-change check and its HTTP request and response.

#![deny(missing_docs)]

pub mod audit;
pub mod candidates;
pub mod line;
pub mod lookup;
pub mod password;
pub mod report;
pub mod scheme;
pub mod words;

pub use audit::{Account, Audit, AuditOptions, Inventory};
pub use candidates::{CandidateList, CandidateOptions, Origin};
pub use lookup::{BreachLookup, HashSetLookup, LookupChain};
pub use password::{CheckRequest, CheckResponse, Context, Policy, Reason, Verdict, check_password};
pub use report::{Coverage, Finding, FindingKind, Report};
pub use scheme::{Scheme, StoredHash};
