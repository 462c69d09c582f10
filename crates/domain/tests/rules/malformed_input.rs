//! The malformed-input errors raised outside `decide`: id, skill, rule id and identity number
//! parsing, and money arithmetic that would overflow.

use daojia_domain::certificates::IdentityNumber;
use daojia_domain::{
    BasisPoints, ComplaintId, CustomerId, DomainError, ErrorKind, Fen, OrderId, RuleId, SkillKind,
    WorkerId,
};

#[test]
fn ids_must_be_non_nil_uuids() {
    let table: [(&str, &str); 5] = [
        ("", "empty"),
        ("not-a-uuid", "not hex"),
        ("00000000-0000-0000-0000-000000000000", "nil"),
        ("00000000-0000-0000-0000-00000000000g", "bad digit"),
        ("00000000-0000-0000-0000-0000000000011", "too long"),
    ];
    for (input, why) in table {
        let err = input.parse::<OrderId>().unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidId {
                kind: "order",
                value: input.into()
            },
            "{why}"
        );
        assert_eq!(err.reason(), "INVALID_ID");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    // The kind names the id being parsed, and a long value is cut to 64 characters.
    let long = "x".repeat(500);
    assert_eq!(
        long.parse::<ComplaintId>(),
        Err(DomainError::InvalidId {
            kind: "complaint",
            value: "x".repeat(64)
        })
    );
    assert_eq!(
        "c1".parse::<CustomerId>().unwrap_err(),
        DomainError::InvalidId {
            kind: "customer",
            value: "c1".into()
        }
    );
    // Stream names of another category are refused with the whole stream name.
    assert_eq!(
        WorkerId::from_stream_name("order-00000000-0000-0000-0000-0000000000a1"),
        Err(DomainError::InvalidId {
            kind: "worker",
            value: "order-00000000-0000-0000-0000-0000000000a1".into()
        })
    );
    // And the accepted forms parse.
    assert_eq!(
        "000000000000000000000000000000a1".parse::<WorkerId>(),
        Ok(WorkerId::from_u128(0xA1))
    );
}

#[test]
fn skills_are_lowercase_snake_words() {
    for bad in [
        "",
        "Elder_care",
        "elder-care",
        "_elder",
        "elder_",
        "elder care",
    ] {
        let err = bad.parse::<SkillKind>().unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidSkill { value: bad.into() },
            "{bad:?}"
        );
        assert_eq!(err.reason(), "INVALID_SKILL");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(
        "a".repeat(41).parse::<SkillKind>(),
        Err(DomainError::InvalidSkill {
            value: "a".repeat(40)
        })
    );
    assert!("a".repeat(40).parse::<SkillKind>().is_ok());
    assert!("elder_care".parse::<SkillKind>().is_ok());
}

#[test]
fn rule_ids_are_lowercase_dotted_words() {
    for bad in ["", "Late.checkin", "late-checkin", "late checkin", "迟到"] {
        let err = RuleId::new(bad).unwrap_err();
        assert_eq!(
            err,
            DomainError::InvalidRuleId { value: bad.into() },
            "{bad:?}"
        );
        assert_eq!(err.reason(), "INVALID_RULE_ID");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(
        RuleId::new(&"a".repeat(65)),
        Err(DomainError::InvalidRuleId {
            value: "a".repeat(64)
        })
    );
    assert!(RuleId::new(&"a".repeat(64)).is_ok());
    assert!(RuleId::new("order.late_check_in.30").is_ok());
    // Stored rule ids go through the same check when deserialized.
    assert!(serde_json::from_str::<RuleId>("\"Bad Rule\"").is_err());
}

#[test]
fn identity_numbers_need_eighteen_characters_and_the_check_digit() {
    let table = [
        ("", "empty"),
        ("11010519491231002", "17 characters"),
        ("11010519491231002XX", "19 characters"),
        ("110105194912310021", "wrong check digit"),
        ("1101051949123100 X", "space in the body"),
        ("11010519491231002Y", "letter other than X"),
    ];
    for (input, why) in table {
        let err = IdentityNumber::new(input).unwrap_err();
        assert_eq!(err, DomainError::InvalidIdentityNumber, "{why}");
        assert_eq!(err.reason(), "INVALID_IDENTITY_NUMBER");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(
        IdentityNumber::new("11010519491231002x").map(|n| n.as_str().to_owned()),
        Ok("11010519491231002X".to_owned())
    );
    assert!(serde_json::from_str::<IdentityNumber>("\"110105194912310021\"").is_err());
}

#[test]
fn money_arithmetic_reports_overflow_instead_of_wrapping() {
    let table: [(Result<Fen, DomainError>, &str); 6] = [
        (Fen(i64::MAX).checked_add(Fen(1)), "add"),
        (Fen(i64::MIN).checked_add(Fen(-1)), "add below"),
        (Fen(i64::MIN).checked_sub(Fen(1)), "sub"),
        (Fen(i64::MAX / 2 + 1).checked_mul(2), "mul"),
        (Fen::yuan(i64::MAX / 100 + 1), "yuan"),
        (Fen(i64::MAX).share(BasisPoints(10_001)), "share"),
    ];
    for (result, what) in table {
        let err = result.unwrap_err();
        assert_eq!(err, DomainError::MoneyOverflow, "{what}");
        assert_eq!(err.reason(), "MONEY_OUT_OF_RANGE");
    }
    // The edges themselves still fit.
    assert_eq!(Fen(i64::MAX - 1).checked_add(Fen(1)), Ok(Fen(i64::MAX)));
    assert_eq!(Fen::yuan(i64::MAX / 100), Ok(Fen(i64::MAX / 100 * 100)));
}
