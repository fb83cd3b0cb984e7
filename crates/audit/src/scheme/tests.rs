use super::*;

fn parse(s: &str) -> StoredHash {
    match StoredHash::parse(s) {
        Ok(h) => h,
        Err(e) => panic!("{s}: {e}"),
    }
}

// Fixed vectors, each from a public source:
// - SHA-crypt: Ulrich Drepper's specification (akkadia.org/drepper/SHA-crypt.txt),
//   "Hello world!" with salt "saltstring".
// - MD5 crypt: the Passlib md5_crypt documentation's example for "password".
// - bcrypt: "password" at cost 4, from the bcrypt crate's tests (an online generator).
// - Argon2id: the PHC reference implementation's test vector ("password", "somesalt",
//   m=256, t=2, p=1).
// - DES crypt: "test" with salt "aZ", from the pwhash crate's tests.
// - {SHA}: `htpasswd -s` for "password" (base64 of SHA-1 5baa61e4…).
const VECTORS: &[(&str, &str, Scheme)] = &[
    (
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
        "Hello world!",
        Scheme::Sha256Crypt,
    ),
    (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        "Hello world!",
        Scheme::Sha512Crypt,
    ),
    (
        "$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0",
        "password",
        Scheme::Md5Crypt,
    ),
    (
        "$2a$04$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96",
        "password",
        Scheme::Bcrypt,
    ),
    (
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "password",
        Scheme::Argon2,
    ),
    ("aZGJuE6EXrjEE", "test", Scheme::DesCrypt),
    (
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "password",
        Scheme::Sha1,
    ),
];

#[test]
fn public_vectors_verify_and_wrong_passwords_do_not() {
    for (hash, password, scheme) in VECTORS {
        let h = parse(hash);
        assert_eq!(h.scheme(), *scheme, "{hash}");
        assert!(h.verify(password), "{hash} should verify {password}");
        assert!(
            !h.verify("wrong"),
            "{hash} must not verify a wrong password"
        );
    }
}

#[test]
fn dovecot_prefixes_select_the_scheme() {
    let cases = [
        ("{SHA512-CRYPT}", VECTORS[1].0, Scheme::Sha512Crypt),
        ("{SHA256-CRYPT}", VECTORS[0].0, Scheme::Sha256Crypt),
        ("{MD5-CRYPT}", VECTORS[2].0, Scheme::Md5Crypt),
        ("{BLF-CRYPT}", VECTORS[3].0, Scheme::Bcrypt),
        ("{ARGON2ID}", VECTORS[4].0, Scheme::Argon2),
        ("{CRYPT}", VECTORS[5].0, Scheme::DesCrypt),
        ("{CRYPT}", VECTORS[1].0, Scheme::Sha512Crypt),
        ("{crypt}", VECTORS[2].0, Scheme::Md5Crypt),
    ];
    for (prefix, hash, scheme) in cases {
        assert_eq!(
            parse(&format!("{prefix}{hash}")).scheme(),
            scheme,
            "{prefix}"
        );
    }
    // A prefix that names one scheme over a hash of another is malformed.
    assert_eq!(
        StoredHash::parse(&format!("{{SHA512-CRYPT}}{}", VECTORS[2].0)),
        Err(HashError::Malformed(Scheme::Sha512Crypt))
    );
}

#[test]
fn generated_sha_crypt_with_rounds_verifies() {
    let p = sha_crypt::Sha512Params::new(1000).unwrap();
    let sum = sha_crypt::sha512_crypt_b64(b"Winter2024!", b"knownsalt", &p).unwrap();
    let h = parse(&format!("{{SHA512-CRYPT}}$6$rounds=1000$knownsalt${sum}"));
    assert!(h.verify("Winter2024!"));
    assert!(!h.verify("Winter2024"));
    // glibc clamps rounds below the minimum to 1,000.
    let h = parse(&format!("$6$rounds=10$knownsalt${sum}"));
    assert!(h.verify("Winter2024!"));
}

#[test]
fn generated_bcrypt_and_argon2_verify() {
    let b = bcrypt::hash_with_salt("letmein", 4, [7u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let h = parse(&format!("{{BLF-CRYPT}}{b}"));
    assert!(h.verify("letmein") && !h.verify("letmeout"));

    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(64, 1, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"saltsaltsalt").unwrap();
    let phc = a.hash_password(b"letmein", &salt).unwrap().to_string();
    let h = parse(&format!("{{ARGON2I}}{phc}"));
    assert!(h.verify("letmein") && !h.verify("letmeout"));
}

#[test]
fn ssha_sha_plain_and_ntlm() {
    let mut s = Sha1::new();
    s.update(b"secret");
    s.update(b"SALT");
    let mut raw = s.finalize().to_vec();
    raw.extend_from_slice(b"SALT");
    let h = parse(&format!("{{SSHA}}{}", BASE64.encode(&raw)));
    assert!(h.verify("secret") && !h.verify("Secret"));
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert!(parse(&format!("{{SSHA.HEX}}{hex}")).verify("secret"));

    assert_eq!(parse("{PLAIN}hunter2"), StoredHash::Plain("hunter2".into()));
    assert_eq!(parse("{CLEARTEXT}a:b"), StoredHash::Plain("a:b".into()));
    assert_eq!(
        parse("{PLAIN.B64}aHVudGVyMg=="),
        StoredHash::Plain("hunter2".into())
    );
    assert_eq!(parse("{PLAIN}"), StoredHash::Plain(String::new()));
    let n = parse("{NTLM}8846f7eaee8fb117ad06bdd830b7586c");
    assert!(n.verify("password"));
}

#[test]
fn unsupported_and_malformed_are_told_apart() {
    assert_eq!(
        StoredHash::parse("{SSHA512}abcd"),
        Err(HashError::Unsupported("SSHA512".into()))
    );
    assert_eq!(
        StoredHash::parse("$y$j9T$salt$hash"),
        Err(HashError::Unsupported("$y$".into()))
    );
    assert_eq!(
        StoredHash::parse("$apr1$salt$hash"),
        Err(HashError::Unsupported("$apr1$".into()))
    );
    assert_eq!(
        StoredHash::parse("$6$salt$tooshort"),
        Err(HashError::Malformed(Scheme::Sha512Crypt))
    );
    assert_eq!(
        StoredHash::parse("$2y$99$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96"),
        Err(HashError::Malformed(Scheme::Bcrypt))
    );
    assert_eq!(
        StoredHash::parse("{SHA}bm90IDIwIGJ5dGVz"),
        Err(HashError::Malformed(Scheme::Sha1))
    );
    assert_eq!(StoredHash::parse("hello"), Err(HashError::Unrecognised));
    assert_eq!(StoredHash::parse(""), Err(HashError::Empty));
    assert_eq!(
        StoredHash::parse("{WEIRD\u{1}}x"),
        Err(HashError::Unsupported("other".into()))
    );
}

#[test]
fn costly_hashes_are_flagged() {
    let b = "$2y$15$UuTkLRZZ6QofpDOlMz32MuuxEHA43WOemOYHPz6.SjsVsyO1tDU96";
    assert!(parse(b).too_costly());
    assert!(!parse(VECTORS[3].0).too_costly());
    let big =
        "$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
    assert!(parse(big).too_costly());
}
