use super::*;
use unicode_normalization::UnicodeNormalization;

/// The README's table of built-in spellings ("Input": values): (field, alias, canonical name).
const BUILTIN_TABLE: &[(AliasField, &str, &str)] = &[
    (AliasField::Direction, "outgoing", "outgoing"),
    (AliasField::Direction, "out", "outgoing"),
    (AliasField::Direction, "sent", "outgoing"),
    (AliasField::Direction, "đi", "outgoing"),
    (AliasField::Direction, "di", "outgoing"),
    (AliasField::Direction, "văn bản đi", "outgoing"),
    (AliasField::Direction, "incoming", "incoming"),
    (AliasField::Direction, "in", "incoming"),
    (AliasField::Direction, "received", "incoming"),
    (AliasField::Direction, "đến", "incoming"),
    (AliasField::Direction, "den", "incoming"),
    (AliasField::Direction, "văn bản đến", "incoming"),
    (AliasField::Channel, "electronic", "electronic"),
    (AliasField::Channel, "điện tử", "electronic"),
    (AliasField::Channel, "dien tu", "electronic"),
    (AliasField::Channel, "edxml", "electronic"),
    (AliasField::Channel, "online", "electronic"),
    (AliasField::Channel, "paper", "paper"),
    (AliasField::Channel, "giấy", "paper"),
    (AliasField::Channel, "giay", "paper"),
    (AliasField::Channel, "bản giấy", "paper"),
    (AliasField::Confidentiality, "normal", "normal"),
    (AliasField::Confidentiality, "none", "normal"),
    (AliasField::Confidentiality, "thường", "normal"),
    (AliasField::Confidentiality, "thuong", "normal"),
    (AliasField::Confidentiality, "không mật", "normal"),
    (AliasField::Confidentiality, "mat", "mat"),
    (AliasField::Confidentiality, "mật", "mat"),
    (AliasField::Confidentiality, "confidential", "mat"),
    (AliasField::Confidentiality, "toi_mat", "toi_mat"),
    (AliasField::Confidentiality, "tối mật", "toi_mat"),
    (AliasField::Confidentiality, "toi mat", "toi_mat"),
    (AliasField::Confidentiality, "secret", "toi_mat"),
    (AliasField::Confidentiality, "tuyet_mat", "tuyet_mat"),
    (AliasField::Confidentiality, "tuyệt mật", "tuyet_mat"),
    (AliasField::Confidentiality, "tuyet mat", "tuyet_mat"),
    (AliasField::Confidentiality, "top secret", "tuyet_mat"),
    (AliasField::Role, "person", "person"),
    (AliasField::Role, "cá nhân", "person"),
    (AliasField::Role, "ca nhan", "person"),
    (AliasField::Role, "individual", "person"),
    (AliasField::Role, "organization", "organization"),
    (AliasField::Role, "organisation", "organization"),
    (AliasField::Role, "cơ quan", "organization"),
    (AliasField::Role, "co quan", "organization"),
    (AliasField::Role, "tổ chức", "organization"),
    (AliasField::Role, "to chuc", "organization"),
];

/// Looks `raw` up in the table of `field` and returns the canonical name it maps to.
fn lookup(aliases: &Aliases, field: AliasField, raw: &str) -> Option<&'static str> {
    match field {
        AliasField::Direction => aliases.direction(raw).map(Direction::as_str),
        AliasField::Channel => aliases.channel(raw).map(Channel::as_str),
        AliasField::Confidentiality => aliases.confidentiality(raw).map(Confidentiality::as_str),
        AliasField::Role => aliases.role(raw).map(Role::as_str),
    }
}

fn nfd(s: &str) -> String {
    s.nfd().collect()
}

#[test]
fn normalize_text_composes_trims_collapses_and_lowercases() {
    let cases: &[(&str, &str)] = &[
        ("", ""),
        ("   \t\n ", ""),
        ("Online", "online"),
        ("  TOP \t  SECRET  ", "top secret"),
        ("ĐI", "đi"),
        ("VĂN BẢN ĐẾN", "văn bản đến"),
        ("Tối\u{00A0}Mật", "tối mật"),
        ("\r\nbản   giấy\r\n", "bản giấy"),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_text(raw), *want, "raw {raw:?}");
    }
    let decomposed = nfd("Tuyệt Mật");
    assert_ne!(decomposed, "Tuyệt Mật", "the test input must really be NFD");
    assert_eq!(normalize_text(&decomposed), "tuyệt mật");
}

#[test]
fn normalize_unit_composes_and_trims_but_keeps_case() {
    let cases: &[(&str, &str)] = &[
        ("", ""),
        ("  Văn phòng  ", "Văn phòng"),
        ("Phòng  Tư pháp", "Phòng  Tư pháp"),
        ("ABC", "ABC"),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_unit(raw), *want, "raw {raw:?}");
    }
    assert_eq!(
        normalize_unit(&format!(" {} ", nfd("Văn phòng"))),
        "Văn phòng"
    );
}

#[test]
fn every_builtin_alias_matches_as_written() {
    let aliases = Aliases::builtin();
    for (field, alias, want) in BUILTIN_TABLE {
        assert_eq!(
            lookup(&aliases, *field, alias),
            Some(*want),
            "{field:?} {alias:?}"
        );
    }
}

#[test]
fn every_builtin_alias_matches_in_upper_case() {
    let aliases = Aliases::builtin();
    for (field, alias, want) in BUILTIN_TABLE {
        let upper = alias.to_uppercase();
        assert_eq!(
            lookup(&aliases, *field, &upper),
            Some(*want),
            "{field:?} {upper:?}"
        );
    }
}

#[test]
fn every_builtin_alias_matches_in_nfd() {
    let aliases = Aliases::builtin();
    for (field, alias, want) in BUILTIN_TABLE {
        let decomposed = nfd(alias);
        assert_eq!(
            lookup(&aliases, *field, &decomposed),
            Some(*want),
            "{field:?} {decomposed:?}"
        );
        let upper = nfd(&alias.to_uppercase());
        assert_eq!(
            lookup(&aliases, *field, &upper),
            Some(*want),
            "{field:?} {upper:?}"
        );
    }
}

#[test]
fn every_builtin_alias_matches_with_extra_whitespace() {
    let aliases = Aliases::builtin();
    for (field, alias, want) in BUILTIN_TABLE {
        let padded = format!(" \t{}\u{00A0}\n", alias.replace(' ', "  \t "));
        assert_eq!(
            lookup(&aliases, *field, &padded),
            Some(*want),
            "{field:?} {padded:?}"
        );
    }
}

#[test]
fn unknown_values_match_nothing() {
    let aliases = Aliases::builtin();
    let cases: &[(AliasField, &str)] = &[
        (AliasField::Direction, ""),
        (AliasField::Direction, "   "),
        (AliasField::Direction, "outbound"),
        (AliasField::Direction, "vănbảnđi"),
        (AliasField::Channel, ""),
        (AliasField::Channel, "fax"),
        (AliasField::Channel, "e-mail"),
        (AliasField::Confidentiality, "mật mật"),
        (AliasField::Confidentiality, "restricted"),
        (AliasField::Confidentiality, "tối_mật"),
        (AliasField::Confidentiality, "0"),
        (AliasField::Confidentiality, "-"),
        (AliasField::Role, ""),
        (AliasField::Role, "seal"),
        (AliasField::Role, "organizations"),
    ];
    for (field, raw) in cases {
        assert_eq!(lookup(&aliases, *field, raw), None, "{field:?} {raw:?}");
    }
}

#[test]
fn empty_or_blank_confidentiality_is_normal() {
    let aliases = Aliases::builtin();
    for raw in ["", " ", "\t \r\n", "\u{00A0}"] {
        assert_eq!(
            aliases.confidentiality(raw),
            Some(Confidentiality::Normal),
            "{raw:?}"
        );
    }
}

#[test]
fn config_alias_is_recognised_in_any_spelling() {
    let mut aliases = Aliases::builtin();
    aliases
        .add(AliasField::Channel, &nfd("Trục Liên Thông"), "electronic")
        .unwrap();
    aliases
        .add(AliasField::Confidentiality, "KÍN", "TOI_MAT")
        .unwrap();
    aliases
        .add(AliasField::Confidentiality, "kín nhất", "tuyet mat")
        .unwrap();
    aliases
        .add(AliasField::Direction, "gửi", " Outgoing ")
        .unwrap();
    aliases
        .add(AliasField::Role, "con dấu", "organization")
        .unwrap();

    assert_eq!(
        aliases.channel("trục liên thông"),
        Some(Channel::Electronic)
    );
    assert_eq!(
        aliases.channel(&nfd(" TRỤC  LIÊN THÔNG ")),
        Some(Channel::Electronic)
    );
    assert_eq!(
        aliases.confidentiality("kín"),
        Some(Confidentiality::ToiMat)
    );
    assert_eq!(
        aliases.confidentiality("Kín Nhất"),
        Some(Confidentiality::TuyetMat)
    );
    assert_eq!(aliases.direction("GỬI"), Some(Direction::Outgoing));
    assert_eq!(aliases.role("con dấu"), Some(Role::Organization));
    // Built-in aliases are still there.
    assert_eq!(aliases.channel("giấy"), Some(Channel::Paper));
}

#[test]
fn config_alias_overrides_a_builtin_one() {
    let mut aliases = Aliases::builtin();
    aliases.add(AliasField::Channel, "online", "paper").unwrap();
    assert_eq!(aliases.channel("online"), Some(Channel::Paper));
}

#[test]
fn config_alias_with_a_bad_target_or_empty_key_is_refused() {
    let mut aliases = Aliases::builtin();
    let cases: &[(AliasField, &str, &str)] = &[
        (AliasField::Channel, "trục", "điện tử"),
        (AliasField::Channel, "trục", "fax"),
        (AliasField::Direction, "gửi", "out"),
        (AliasField::Confidentiality, "kín", "secret"),
        (AliasField::Confidentiality, "kín", ""),
        (AliasField::Role, "con dấu", "organisation"),
        (AliasField::Role, "  ", "person"),
    ];
    for (field, alias, canonical) in cases {
        let err = aliases.add(*field, alias, canonical).unwrap_err();
        assert!(err.contains(field.as_str()), "{err}");
    }
    let err = aliases
        .add(AliasField::Confidentiality, "kín", "secret")
        .unwrap_err();
    assert!(err.contains("\"secret\""), "{err}");
    assert!(err.contains("normal, mat, toi_mat, tuyet_mat"), "{err}");
    assert_eq!(
        aliases.confidentiality("kín"),
        None,
        "a refused alias is not added"
    );
}

#[test]
fn alias_field_names_round_trip() {
    for v in AliasField::ALL {
        assert_eq!(AliasField::from_name(v.as_str()), Some(v));
    }
    assert_eq!(AliasField::from_name("unit"), None);
}
