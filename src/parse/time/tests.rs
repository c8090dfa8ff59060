use super::*;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn unix(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp()
}

fn in_range(day: NaiveDate, (from, to): (NaiveDate, NaiveDate)) -> bool {
    from <= day && day <= to
}

#[test]
fn accepted_forms_give_the_same_instant() {
    let want = unix("2026-06-14T02:00:00Z");
    let cases = [
        "2026-06-14T09:00:00+07:00",
        "2026-06-14T02:00:00Z",
        "2026-06-14T02:00:00z",
        "2026-06-14t02:00:00Z",
        "2026-06-14 02:00:00Z",
        "2026-06-14T02:00:00+00:00",
        "2026-06-14T02:00:00-00:00",
        "2026-06-13T21:30:00-04:30",
        "2026-06-14T09:00:00.999999999+07:00",
        "2026-06-14T09:00:00.5+07:00",
        "2026-06-14 09:00:00",
        "2026-06-14T09:00:00",
        "2026-06-14t09:00:00",
        "2026-06-14 09:00:00.123",
        "14/06/2026 09:00",
        "14/06/2026 09:00:00",
        "  14/06/2026 09:00:00\t",
        "\n2026-06-14T09:00:00+07:00 ",
    ];
    for s in cases {
        assert_eq!(parse_time(s, HCM), Ok(want), "{s:?}");
    }
}

#[test]
fn day_first_date_alone_is_local_midnight() {
    assert_eq!(
        parse_time("14/06/2026", HCM),
        Ok(unix("2026-06-14T00:00:00+07:00"))
    );
    assert_eq!(
        parse_time("01/01/2026", chrono_tz::UTC),
        Ok(unix("2026-01-01T00:00:00Z"))
    );
}

#[test]
fn fractions_are_floored_also_before_1970() {
    assert_eq!(parse_time("1970-01-01T00:00:00.9Z", HCM), Ok(0));
    assert_eq!(parse_time("1969-12-31T23:59:59.9Z", HCM), Ok(-1));
    assert_eq!(parse_time("1969-12-31T23:59:59Z", HCM), Ok(-1));
}

#[test]
fn rejected_inputs() {
    use TimeError::*;
    let format = |s: &str| Format {
        input: s.trim().to_owned(),
    };
    let date = |s: &str| Date {
        input: s.to_owned(),
    };
    let time = |s: &str| TimeOfDay {
        input: s.to_owned(),
    };
    let offset = |s: &str| Offset {
        input: s.to_owned(),
    };
    let cases: Vec<(&str, TimeError)> = vec![
        ("", Empty),
        ("   \t", Empty),
        ("2026-06-14", format("2026-06-14")),
        ("2026/06/14 09:00:00", format("2026/06/14 09:00:00")),
        ("14-06-2026", format("14-06-2026")),
        ("06/14/2026", date("06/14/2026")),
        ("31/02/2026", date("31/02/2026")),
        ("29/02/2026", date("29/02/2026")),
        ("00/01/2026", date("00/01/2026")),
        ("2026-13-01T00:00:00Z", date("2026-13-01T00:00:00Z")),
        ("2026-02-29 00:00:00", date("2026-02-29 00:00:00")),
        ("2026-06-14T25:00:00Z", time("2026-06-14T25:00:00Z")),
        ("2026-06-14T24:00:00Z", time("2026-06-14T24:00:00Z")),
        ("2026-06-14T09:60:00Z", time("2026-06-14T09:60:00Z")),
        ("2026-06-14T09:00:60Z", time("2026-06-14T09:00:60Z")),
        ("14/06/2026 24:00", time("14/06/2026 24:00")),
        ("14/06/26", format("14/06/26")),
        ("4/6/2026", format("4/6/2026")),
        ("14/06/2026T09:00", format("14/06/2026T09:00")),
        ("14/06/2026  09:00", format("14/06/2026  09:00")),
        ("14/06/2026 9:00", format("14/06/2026 9:00")),
        ("14/06/2026 09:00:00Z", format("14/06/2026 09:00:00Z")),
        (
            "14/06/2026 09:00:00+07:00",
            format("14/06/2026 09:00:00+07:00"),
        ),
        ("1718355600", format("1718355600")),
        ("June 14, 2026", format("June 14, 2026")),
        ("2026-06-14T09:00", format("2026-06-14T09:00")),
        ("2026-06-14T09:00:00+7", format("2026-06-14T09:00:00+7")),
        (
            "2026-06-14T09:00:00+0700",
            format("2026-06-14T09:00:00+0700"),
        ),
        ("2026-06-14T09:00:00+07", format("2026-06-14T09:00:00+07")),
        (
            "2026-06-14T09:00:00 +07:00",
            format("2026-06-14T09:00:00 +07:00"),
        ),
        (
            "2026-06-14T09:00:00+24:00",
            offset("2026-06-14T09:00:00+24:00"),
        ),
        (
            "2026-06-14T09:00:00+07:60",
            offset("2026-06-14T09:00:00+07:60"),
        ),
        ("2026-06-14T09:00:00.Z", format("2026-06-14T09:00:00.Z")),
        ("2026-06-14T09:00:00,5Z", format("2026-06-14T09:00:00,5Z")),
        ("2026-06-14T09:00:00Zabc", format("2026-06-14T09:00:00Zabc")),
        (
            "2026-06-14T09:00:00+07:00x",
            format("2026-06-14T09:00:00+07:00x"),
        ),
        ("2026-06-14X09:00:00", format("2026-06-14X09:00:00")),
        ("+2026-06-14T09:00:00Z", format("+2026-06-14T09:00:00Z")),
        ("2026-6-14T09:00:00Z", format("2026-6-14T09:00:00Z")),
        (
            "２０２６-06-14T09:00:00Z",
            format("２０２６-06-14T09:00:00Z"),
        ),
        ("hôm qua", format("hôm qua")),
        ("hôm qua lúc 9 giờ sáng", format("hôm qua lúc 9 giờ sáng")),
    ];
    for (s, want) in cases {
        assert_eq!(parse_time(s, HCM), Err(want), "{s:?}");
    }
}

#[test]
fn error_messages_quote_a_bounded_input() {
    let msg = parse_time("hôm qua", HCM).unwrap_err().to_string();
    assert!(msg.contains("\"hôm qua\""), "{msg}");
    let long = "x".repeat(10_000);
    let msg = parse_time(&long, HCM).unwrap_err().to_string();
    assert!(msg.len() < 300, "{msg}");
    assert!(msg.contains('…'), "{msg}");
}

#[test]
fn local_day_cut_off_edges_in_ho_chi_minh() {
    let h1 = period_range("2026-H1").unwrap();
    let h2 = period_range("2026-H2").unwrap();
    // (instant, local day, inside 2026-H1)
    let cases = [
        ("2026-06-14T23:59:59+07:00", date(2026, 6, 14), true),
        ("2026-06-15T00:00:00+07:00", date(2026, 6, 15), false),
        ("2026-06-14T16:59:59Z", date(2026, 6, 14), true),
        ("2026-06-14T17:00:00Z", date(2026, 6, 15), false),
        ("2026-06-14T17:30:00Z", date(2026, 6, 15), false),
        ("2026-06-14 23:59:59", date(2026, 6, 14), true),
        ("2026-06-15 00:00:00", date(2026, 6, 15), false),
        ("14/06/2026 23:59:59", date(2026, 6, 14), true),
        ("15/06/2026", date(2026, 6, 15), false),
        ("2025-12-14T23:59:59+07:00", date(2025, 12, 14), false),
        ("2025-12-14T17:00:00Z", date(2025, 12, 15), true),
    ];
    for (s, want_day, in_h1) in cases {
        let day = local_day(parse_time(s, HCM).unwrap(), HCM);
        assert_eq!(day, want_day, "{s}");
        assert_eq!(in_range(day, h1), in_h1, "{s} in 2026-H1");
        let in_h2 = day >= date(2026, 6, 15) && day <= date(2026, 12, 14);
        assert_eq!(in_range(day, h2), in_h2, "{s} in 2026-H2");
    }
}

#[test]
fn local_naive_and_day_first_equal_the_offset_form() {
    let cases = [
        ("2026-06-14 23:59:59", "2026-06-14T23:59:59+07:00"),
        ("2026-06-14T23:59:59", "2026-06-14T23:59:59+07:00"),
        ("14/06/2026 23:59:59", "2026-06-14T23:59:59+07:00"),
        ("15/06/2026 00:00", "2026-06-15T00:00:00+07:00"),
        ("15/06/2026", "2026-06-15T00:00:00+07:00"),
    ];
    for (local, with_offset) in cases {
        assert_eq!(
            parse_time(local, HCM),
            parse_time(with_offset, HCM),
            "{local}"
        );
        assert_eq!(parse_time(local, HCM), Ok(unix(with_offset)), "{local}");
    }
}

#[test]
fn local_time_in_a_dst_gap_or_overlap_takes_the_earliest_valid_instant() {
    let berlin = chrono_tz::Europe::Berlin;
    let new_york = chrono_tz::America::New_York;
    let cases = [
        // Ordinary summer and winter times.
        (berlin, "2026-07-01 12:00:00", "2026-07-01T10:00:00Z"),
        (berlin, "2026-01-01 12:00:00", "2026-01-01T11:00:00Z"),
        // 02:00-03:00 on 29 Mar 2026 does not exist; it maps to the 01:00Z transition.
        (berlin, "2026-03-29 02:30:00", "2026-03-29T01:00:00Z"),
        (berlin, "29/03/2026 02:00", "2026-03-29T01:00:00Z"),
        (berlin, "2026-03-29 03:00:00", "2026-03-29T01:00:00Z"),
        // 02:00-03:00 on 25 Oct 2026 happens twice; the CEST one comes first.
        (berlin, "2026-10-25 02:30:00", "2026-10-25T00:30:00Z"),
        (berlin, "25/10/2026 02:59:59", "2026-10-25T00:59:59Z"),
        (new_york, "2026-03-08 02:15:00", "2026-03-08T07:00:00Z"),
        (new_york, "2026-11-01 01:30:00", "2026-11-01T05:30:00Z"),
    ];
    for (tz, local, want) in cases {
        assert_eq!(parse_time(local, tz), Ok(unix(want)), "{local} in {tz}");
    }
}

#[test]
fn extreme_inputs_do_not_panic() {
    let zones = [
        HCM,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Etc::GMTPlus12,
        chrono_tz::UTC,
    ];
    let inputs = [
        "0000-01-01 00:00:00",
        "0000-01-01T00:00:00+23:59",
        "0000-01-01T00:00:00-23:59",
        "9999-12-31 23:59:59",
        "9999-12-31T23:59:59-23:59",
        "01/01/0000",
        "31/12/9999 23:59:59",
    ];
    for tz in zones {
        for s in inputs {
            let t = parse_time(s, tz).unwrap();
            let _ = local_day(t, tz);
        }
    }
    assert_eq!(local_day(i64::MAX, HCM), NaiveDate::MAX);
    assert_eq!(local_day(i64::MIN, HCM), NaiveDate::MIN);
}

#[test]
fn local_day_uses_the_agency_zone() {
    let t = unix("2026-06-14T17:30:00Z");
    assert_eq!(local_day(t, HCM), date(2026, 6, 15));
    assert_eq!(local_day(t, chrono_tz::UTC), date(2026, 6, 14));
    assert_eq!(
        local_day(t, chrono_tz::America::New_York),
        date(2026, 6, 14)
    );
    assert_eq!(local_day(-1, chrono_tz::UTC), date(1969, 12, 31));
}

#[test]
fn api_dates() {
    assert_eq!(parse_date("2026-06-14"), Ok(date(2026, 6, 14)));
    assert_eq!(parse_date("2024-02-29"), Ok(date(2024, 2, 29)));
    assert_eq!(
        parse_date("2026-02-29"),
        Err(TimeError::Date {
            input: "2026-02-29".into()
        })
    );
    for bad in [
        "",
        "2026-6-14",
        "14/06/2026",
        "2026-06-14T00:00:00Z",
        " 2026-06-14",
        "2026-06-1x",
        "20260614",
        "2026_06_14",
    ] {
        assert_eq!(
            parse_date(bad),
            Err(TimeError::ApiDate { input: bad.into() }),
            "{bad:?}"
        );
    }
}

#[test]
fn period_edges() {
    let cases = [
        ("2026-01", date(2025, 12, 15), date(2026, 1, 14)),
        ("2026-02", date(2026, 1, 15), date(2026, 2, 14)),
        ("2026-03", date(2026, 2, 15), date(2026, 3, 14)),
        ("2026-12", date(2026, 11, 15), date(2026, 12, 14)),
        ("2026-Q1", date(2025, 12, 15), date(2026, 3, 14)),
        ("2026-Q2", date(2026, 3, 15), date(2026, 6, 14)),
        ("2026-Q3", date(2026, 6, 15), date(2026, 9, 14)),
        ("2026-Q4", date(2026, 9, 15), date(2026, 12, 14)),
        ("2026-q2", date(2026, 3, 15), date(2026, 6, 14)),
        ("2026-H1", date(2025, 12, 15), date(2026, 6, 14)),
        ("2026-H2", date(2026, 6, 15), date(2026, 12, 14)),
        ("2026-h2", date(2026, 6, 15), date(2026, 12, 14)),
        ("2026", date(2025, 12, 15), date(2026, 12, 14)),
        ("2024", date(2023, 12, 15), date(2024, 12, 14)),
        ("0000-01", date(-1, 12, 15), date(0, 1, 14)),
    ];
    for (period, from, to) in cases {
        assert_eq!(period_range(period), Ok((from, to)), "{period}");
    }
}

#[test]
fn periods_tile_the_year_without_gaps_or_overlaps() {
    let months: Vec<_> = (1..=12)
        .map(|m| period_range(&format!("2026-{m:02}")).unwrap())
        .collect();
    for pair in months.windows(2) {
        assert_eq!(pair[0].1.succ_opt(), Some(pair[1].0));
    }
    let year = period_range("2026").unwrap();
    assert_eq!((months[0].0, months[11].1), year);
    let quarters: Vec<_> = (1..=4)
        .map(|q| period_range(&format!("2026-Q{q}")).unwrap())
        .collect();
    assert_eq!((quarters[0].0, quarters[3].1), year);
    assert_eq!(
        (
            period_range("2026-H1").unwrap().0,
            period_range("2026-H2").unwrap().1
        ),
        year
    );
}

#[test]
fn bad_periods_are_refused() {
    for bad in [
        "", "26", "2026-13", "2026-00", "2026-Q5", "2026-Q0", "2026-H3", "2026-H0", "2026-1",
        "2026-001", "2026-Q", "2026-S1", "2026H1", " 2026", "2026 ", "20261", "202X", "2026-Q1 ",
        "2026-1Q",
    ] {
        assert_eq!(
            period_range(bad),
            Err(TimeError::Period { input: bad.into() }),
            "{bad:?}"
        );
    }
}
