//! The usage commands' value parsers (a report's period, a rate, a currency) and how hours and
//! money are written. Pure: tested without a server.

use chrono::{DateTime, Utc};

use crate::args::{Relative, parse_instant};

/// clap value parser for `--from`/`--to`: RFC 3339, a date (`YYYY-MM-DD`: midnight UTC of that
/// day), or a duration ago (`30d`).
pub fn parse_when(value: &str) -> Result<DateTime<Utc>, String> {
    let trimmed = value.trim();
    // `2025-…`: meant as a date or a time, so say what those look like.
    let dated = trimmed.as_bytes().get(4) == Some(&b'-')
        && trimmed
            .get(..4)
            .is_some_and(|year| year.chars().all(|c| c.is_ascii_digit()));
    parse_instant(trimmed, Utc::now(), Relative::Past).map_err(|e| {
        if dated {
            format!(
                "`{trimmed}`: not a valid date (YYYY-MM-DD) or RFC 3339 time (2025-01-31T12:00:00Z)"
            )
        } else {
            e
        }
    })
}

/// clap value parser for `--per-hour`: money per hour of session time, more than 0.
pub fn parse_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}`: expected an amount per hour, e.g. 0.50"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!(
            "`{value}`: must be more than 0 (to stop charging a workspace: `atrium usage rate delete`)"
        ));
    }
    Ok(rate)
}

/// clap value parser for `--currency`: an ISO 4217 code, three letters (upper-cased).
pub fn parse_currency(value: &str) -> Result<String, String> {
    let code = value.trim();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(format!(
            "`{value}`: expected an ISO 4217 currency code, three letters such as EUR or USD"
        ));
    }
    Ok(code.to_ascii_uppercase())
}

/// Decimal hours to two places (`1.25`); under six minutes to four, so that a small allowance
/// does not read as nothing (`0.0030`).
pub fn hours(seconds: f64) -> String {
    let h = seconds / 3600.0;
    if h != 0.0 && h.abs() < 0.1 {
        format!("{h:.4}")
    } else {
        format!("{h:.2}")
    }
}

/// Decimal hours to four places, for CSV (`1.2500`).
pub fn hours_precise(seconds: f64) -> String {
    format!("{:.4}", seconds / 3600.0)
}

/// An amount of money to two places (`12.50`; never `-0.00`).
pub fn money(amount: f64) -> String {
    let amount = if amount.abs() < 0.005 { 0.0 } else { amount };
    format!("{amount:.2}")
}

/// A rate as given: at least two places, more when it has them (`0.50`, `0.125`).
pub fn rate_text(rate: f64) -> String {
    let text = format!("{rate:.6}");
    let (whole, fraction) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let fraction = fraction.trim_end_matches('0');
    format!("{whole}.{fraction:0<2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_amounts() {
        assert_eq!(parse_rate("0.50"), Ok(0.5));
        assert_eq!(parse_rate(" 2 "), Ok(2.0));
        for bad in ["0", "-1", "-0.5", "abc", "", "NaN", "inf"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_rate("-1").is_err_and(|e| e.contains("more than 0")));
    }

    #[test]
    fn currencies_are_three_letters() {
        assert_eq!(parse_currency("EUR"), Ok("EUR".into()));
        assert_eq!(parse_currency(" usd "), Ok("USD".into()));
        for bad in ["EURO", "EU", "", "E1R", "€€€"] {
            assert!(parse_currency(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn period_ends_read_dates_as_midnight_utc() {
        assert_eq!(
            parse_when("2025-03-01").map(|t| t.to_rfc3339()),
            Ok("2025-03-01T00:00:00+00:00".into())
        );
        assert_eq!(
            parse_when("2025-03-01T12:00:00+01:00").map(|t| t.to_rfc3339()),
            Ok("2025-03-01T11:00:00+00:00".into())
        );
        assert!(parse_when("2025-13-01").is_err_and(|e| e.contains("not a valid date")));
        assert!(parse_when("2025-02-30T00:00:00Z").is_err());
        assert!(parse_when("yesterday").is_err());
    }

    #[test]
    fn numbers_are_written_for_people() {
        assert_eq!(hours(5400.0), "1.50");
        assert_eq!(hours(0.0), "0.00");
        assert_eq!(hours(10.8), "0.0030");
        assert_eq!(hours_precise(60.0), "0.0167");
        assert_eq!(money(12.5), "12.50");
        assert_eq!(money(0.004), "0.00");
        assert_eq!(money(-0.0), "0.00");
        assert_eq!(rate_text(0.5), "0.50");
        assert_eq!(rate_text(0.125), "0.125");
        assert_eq!(rate_text(3.0), "3.00");
    }
}
