//! The password-change check: NIST SP 800-63B revision 4 (2025), §3.1.1.2, for a
//! password a user proposes, with zxcvbn's strength estimate as advice.
//!
//! What the rules are (and are not):
//! - length in Unicode code points after NFKC normalisation: at least 15 when the
//!   password is the only factor, at least 8 with multi-factor authentication;
//!   at least 64 allowed (we allow up to [`Policy::max_length`], 256 by default);
//! - no composition rules (no "one digit, one symbol"), every character allowed;
//! - a blocklist: breached passwords (the breach lookup), common passwords (the
//!   built-in list) and context-specific words (user name, organisation, service),
//!   compared after the normalisation in [`crate::words`].
//!
//! The verdict never contains the password.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

use crate::lookup::{BreachLookup, plaintext_count};
use crate::words::{Blocklist, context_word, equals_username, user_parts};

/// Who is choosing the password, and where.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// The account's user name.
    pub username: Option<&'a str>,
    /// Words of the organisation (its name, products, places).
    pub org_words: &'a [String],
    /// The service's name.
    pub service: Option<&'a str>,
    /// Whether the password is one factor of several.
    pub mfa: bool,
}

/// The thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Minimum length when the password is the only factor (NIST: 15).
    pub min_length_single_factor: usize,
    /// Minimum length with multi-factor authentication (NIST: 8).
    pub min_length_with_mfa: usize,
    /// Maximum length (NIST: allow at least 64).
    pub max_length: usize,
    /// Reject below this zxcvbn score (0–4); `None`: the score is advice only, as NIST
    /// asks for no strength meter rule.
    pub min_score: Option<u8>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_length_single_factor: 15,
            min_length_with_mfa: 8,
            max_length: 256,
            min_score: None,
        }
    }
}

/// Why a password was rejected; `code` is the stable name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// Shorter than the minimum.
    TooShort {
        /// Code points after normalisation.
        length: usize,
        /// The minimum that applied.
        minimum: usize,
    },
    /// Longer than the maximum.
    TooLong {
        /// Code points after normalisation.
        length: usize,
        /// The maximum.
        maximum: usize,
    },
    /// In the breached-password lookup.
    Breached {
        /// Times seen in breaches.
        count: u32,
    },
    /// On the common-password list (after normalisation).
    Common,
    /// The user name.
    EqualsUsername,
    /// Contains a context word (a part of the user name, the organisation, the
    /// service).
    ContextWord {
        /// The word.
        word: String,
    },
    /// zxcvbn's score is below the policy's minimum.
    WeakScore {
        /// The score.
        score: u8,
        /// The minimum.
        minimum: u8,
    },
}

/// zxcvbn's advice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// What is wrong, if zxcvbn says.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warning: Option<String>,
    /// How to do better.
    #[serde(default)]
    pub suggestions: Vec<String>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the password may be used.
    pub accepted: bool,
    /// Every reason it may not (empty when accepted).
    pub reasons: Vec<Reason>,
    /// zxcvbn's score, 0 (guessable) to 4 (very unguessable).
    pub score: u8,
    /// zxcvbn's advice.
    pub feedback: Feedback,
    /// Length in code points after NFKC normalisation.
    pub length: usize,
    /// The minimum length that applied.
    pub min_length: usize,
}

/// zxcvbn is quadratic in the length; past this many characters only the start is
/// scored (a password that long is not short of entropy for zxcvbn's reasons).
const ZXCVBN_MAX: usize = 100;

/// Checks a proposed password.
pub fn check_password(
    password: &str,
    context: &Context<'_>,
    policy: &Policy,
    lookup: Option<&dyn BreachLookup>,
) -> Verdict {
    let normal: String = password.nfkc().collect();
    let length = normal.chars().count();
    let min_length = if context.mfa {
        policy.min_length_with_mfa
    } else {
        policy.min_length_single_factor
    };
    let mut reasons = Vec::new();
    if length < min_length {
        reasons.push(Reason::TooShort {
            length,
            minimum: min_length,
        });
    }
    if length > policy.max_length {
        reasons.push(Reason::TooLong {
            length,
            maximum: policy.max_length,
        });
    }
    if let Some(count) = lookup.and_then(|l| {
        // Breach corpora hold what users typed; try the normalised form as well.
        plaintext_count(l, password).max(plaintext_count(l, &normal))
    }) {
        reasons.push(Reason::Breached { count });
    }
    if !normal.is_empty() && Blocklist::common().matches(&normal) {
        reasons.push(Reason::Common);
    }
    let mut words: Vec<String> = Vec::new();
    if let Some(u) = context.username {
        if equals_username(&normal, u) {
            reasons.push(Reason::EqualsUsername);
        }
        words.extend(user_parts(u));
    }
    words.extend(context.org_words.iter().map(|w| w.to_lowercase()));
    if let Some(s) = context.service {
        words.push(s.to_lowercase());
    }
    if !reasons.contains(&Reason::EqualsUsername) {
        if let Some(w) = context_word(&normal, &words) {
            reasons.push(Reason::ContextWord { word: w.to_owned() });
        }
    }
    let (score, feedback) = strength(&normal, &words);
    if let Some(minimum) = policy.min_score.filter(|m| score < *m) {
        reasons.push(Reason::WeakScore { score, minimum });
    }
    Verdict {
        accepted: reasons.is_empty(),
        reasons,
        score,
        feedback,
        length,
        min_length,
    }
}

fn strength(password: &str, words: &[String]) -> (u8, Feedback) {
    if password.is_empty() {
        return (0, Feedback::default());
    }
    let head: String = password.chars().take(ZXCVBN_MAX).collect();
    let inputs: Vec<&str> = words.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(&head, &inputs);
    let feedback = entropy
        .feedback()
        .map(|f| Feedback {
            warning: f.warning().map(|w| w.to_string()),
            suggestions: f.suggestions().iter().map(|s| s.to_string()).collect(),
        })
        .unwrap_or_default();
    (u8::from(entropy.score()), feedback)
}

/// The body of `POST /v1/password/check`:
/// `{"password": "...", "username": "...", "mfa": false}`; `username`, `service`
/// and `mfa` may be left out.
#[derive(Clone, Deserialize)]
pub struct CheckRequest {
    /// The proposed password.
    pub password: String,
    /// The account's user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The service's name.
    #[serde(default)]
    pub service: Option<String>,
    /// Whether the password is one factor of several.
    #[serde(default)]
    pub mfa: bool,
}

/// Never prints the password.
impl std::fmt::Debug for CheckRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckRequest")
            .field("password", &"<hidden>")
            .field("username", &self.username)
            .field("service", &self.service)
            .field("mfa", &self.mfa)
            .finish()
    }
}

/// The answer of `POST /v1/password/check`: the [`Verdict`] as JSON.
pub type CheckResponse = Verdict;

impl CheckRequest {
    /// Checks the request with the server's organisation words, policy and lookup.
    pub fn check(
        &self,
        org_words: &[String],
        policy: &Policy,
        lookup: Option<&dyn BreachLookup>,
    ) -> CheckResponse {
        let context = Context {
            username: self.username.as_deref(),
            org_words,
            service: self.service.as_deref(),
            mfa: self.mfa,
        };
        check_password(&self.password, &context, policy, lookup)
    }
}

#[cfg(test)]
mod tests;
