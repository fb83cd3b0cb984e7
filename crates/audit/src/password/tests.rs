use super::*;
use crate::lookup::HashSetLookup;

fn check(password: &str, context: &Context<'_>) -> Verdict {
    check_password(password, context, &Policy::default(), None)
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons
        .iter()
        .map(|r| match r {
            Reason::TooShort { .. } => "too_short",
            Reason::TooLong { .. } => "too_long",
            Reason::Breached { .. } => "breached",
            Reason::Common => "common",
            Reason::EqualsUsername => "equals_username",
            Reason::ContextWord { .. } => "context_word",
            Reason::WeakScore { .. } => "weak_score",
        })
        .collect()
}

#[test]
fn length_is_15_alone_and_8_with_mfa() {
    let alone = Context::default();
    let mfa = Context {
        mfa: true,
        ..Context::default()
    };
    let v = check("kettle-zebra-mo", &alone); // 15
    assert!(v.accepted, "{v:?}");
    let v = check("kettle-zebra-m", &alone); // 14
    assert_eq!(
        v.reasons,
        vec![Reason::TooShort {
            length: 14,
            minimum: 15
        }]
    );
    assert!(check("kettle-z", &mfa).accepted); // 8
    assert_eq!(codes(&check("kettle-", &mfa)), vec!["too_short"]);
}

#[test]
fn the_minimum_is_configurable_and_the_maximum_is_at_least_64() {
    let policy = Policy {
        min_length_single_factor: 20,
        ..Policy::default()
    };
    let v = check_password("kettle-zebra-moss-q", &Context::default(), &policy, None);
    assert_eq!(codes(&v), vec!["too_short"]);
    let long: String = "kettle zebra moss quilt "
        .repeat(3)
        .chars()
        .take(64)
        .collect();
    assert!(check(&long, &Context::default()).accepted);
    let too_long = "x".repeat(257);
    assert!(codes(&check(&too_long, &Context::default())).contains(&"too_long"));
}

#[test]
fn unicode_counts_code_points_after_nfkc() {
    // 15 code points, 30 bytes: accepted on length.
    let v = check("ÅÄÖåäöÆØæøßþðéü", &Context::default());
    assert_eq!(v.length, 15);
    assert!(!codes(&v).contains(&"too_short"));
    // "e" + combining acute composes to one code point under NFKC: 16 become 15.
    let decomposed = "e\u{301}".to_owned() + "fghijklmnopqrs";
    assert_eq!(decomposed.chars().count(), 16);
    assert_eq!(check(&decomposed, &Context::default()).length, 15);
}

#[test]
fn no_composition_rules() {
    // Only lower-case letters and spaces: fine.
    assert!(check("quilt harbour lantern", &Context::default()).accepted);
}

#[test]
fn breached_common_and_context_words_are_rejected() {
    let mut lookup = HashSetLookup::new();
    lookup.add_password("correct horse battery staple", 321);
    let v = check_password(
        "correct horse battery staple",
        &Context::default(),
        &Policy::default(),
        Some(&lookup),
    );
    assert_eq!(v.reasons, vec![Reason::Breached { count: 321 }]);

    let v = check("P@ssw0rd2024!!!!!", &Context::default());
    assert!(codes(&v).contains(&"common"), "{v:?}");

    let org = vec!["Parliament".to_owned()];
    let ctx = Context {
        username: Some("j.smith@parliament.example"),
        org_words: &org,
        service: Some("webmail"),
        mfa: false,
    };
    let v = check("MyParliamentSeat99", &ctx);
    assert!(v.reasons.contains(&Reason::ContextWord {
        word: "parliament".into()
    }));
    let v = check("webmail-kettle-zebra", &ctx);
    assert!(v.reasons.contains(&Reason::ContextWord {
        word: "webmail".into()
    }));
    let v = check("smithsmithsmith", &ctx);
    assert!(v.reasons.contains(&Reason::ContextWord {
        word: "smith".into()
    }));
    let long_user = Context {
        username: Some("abcdefghijklmnop"),
        ..Context::default()
    };
    let v = check("ABCDEFGHIJKLMNOP", &long_user);
    assert_eq!(codes(&v), vec!["equals_username"]);
}

#[test]
fn zxcvbn_score_and_feedback_are_present() {
    let weak = check("aaaaaaaaaaaaaaaa", &Context::default());
    assert!(weak.score <= 1, "{weak:?}");
    assert!(weak.feedback.warning.is_some() || !weak.feedback.suggestions.is_empty());
    let strong = check("quilt harbour lantern gravel", &Context::default());
    assert!(strong.score >= 3, "{strong:?}");
    assert!(strong.score <= 4);
    let policy = Policy {
        min_score: Some(3),
        ..Policy::default()
    };
    let v = check_password("aaaaaaaaaaaaaaaa", &Context::default(), &policy, None);
    assert!(codes(&v).contains(&"weak_score"));
}

#[test]
fn the_http_types_round_trip_and_hide_the_password() {
    let req: CheckRequest =
        serde_json::from_str(r#"{"password": "hunter2", "username": "bob", "mfa": true}"#).unwrap();
    assert!(req.mfa);
    assert!(!format!("{req:?}").contains("hunter2"));
    let verdict = req.check(&[], &Policy::default(), None);
    let json = serde_json::to_string(&verdict).unwrap();
    assert!(!json.contains("hunter2"));
    let back: CheckResponse = serde_json::from_str(&json).unwrap();
    assert_eq!(back, verdict);
    assert!(json.contains(r#""code":"too_short""#), "{json}");
    let minimal: CheckRequest = serde_json::from_str(r#"{"password": "x"}"#).unwrap();
    assert!(!minimal.mfa && minimal.username.is_none());
}
