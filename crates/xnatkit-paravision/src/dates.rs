//! ParaVision date values → DICOM DA/TM (and the UTC offset when known).
//!
//! Three spellings exist: PV5 `10:17:36 30 Nov 2011`, PV6/360 ISO
//! `2024-07-25T09:02:12,259+0200` (comma before the milliseconds), and the
//! struct form `(seconds, milliseconds, tz minutes)`.

use chrono::{DateTime, FixedOffset, NaiveDateTime};

use crate::jcamp::Value;

/// A date and time as DICOM wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomDateTime {
    /// `YYYYMMDD`
    pub date: String,
    /// `HHMMSS[.ffffff]`
    pub time: String,
    /// `+HHMM` / `-HHMM`, when the source says.
    pub utc_offset: Option<String>,
}

/// Read any of the three forms; `None` when it is none of them.
pub fn parse(value: &Value) -> Option<DicomDateTime> {
    if let Some(fields) = value.fields() {
        let seconds = fields.first()?.as_f64()?;
        let millis = fields.get(1).and_then(Value::as_f64).unwrap_or(0.0);
        let tz_minutes = fields.get(2).and_then(Value::as_f64).unwrap_or(0.0);
        let offset = FixedOffset::east_opt((tz_minutes * 60.0) as i32)?;
        let utc = DateTime::from_timestamp(seconds as i64, (millis * 1e6) as u32)?;
        let local = utc.with_timezone(&offset);
        return Some(from_naive(local.naive_local(), Some(offset)));
    }
    let text = value.as_str()?.trim();
    if text.contains('T') {
        // `2024-07-25T09:02:12,259+0200`: chrono wants a dot before fractions.
        let normalised = text.replacen(',', ".", 1);
        if let Ok(dt) = DateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f%z") {
            return Some(from_naive(dt.naive_local(), Some(*dt.offset())));
        }
        let naive = NaiveDateTime::parse_from_str(&normalised, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
        return Some(from_naive(naive, None));
    }
    // PV5 pads the day with a space (` 1 Dec 2011`); collapse runs of spaces.
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let naive = NaiveDateTime::parse_from_str(&collapsed, "%H:%M:%S %d %b %Y").ok()?;
    Some(from_naive(naive, None))
}

fn from_naive(naive: NaiveDateTime, offset: Option<FixedOffset>) -> DicomDateTime {
    let millis = naive.and_utc().timestamp_subsec_millis();
    let mut time = naive.format("%H%M%S").to_string();
    if millis > 0 {
        time.push_str(&format!(".{millis:03}"));
    }
    DicomDateTime {
        date: naive.format("%Y%m%d").to_string(),
        time,
        utc_offset: offset.map(|o| {
            let minutes = o.local_minus_utc() / 60;
            let sign = if minutes < 0 { '-' } else { '+' };
            format!("{sign}{:02}{:02}", minutes.abs() / 60, minutes.abs() % 60)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_forms() {
        let pv5 = parse(&Value::Text("10:17:36  1 Nov 2011".into())).unwrap();
        assert_eq!(
            (pv5.date.as_str(), pv5.time.as_str()),
            ("20111101", "101736")
        );
        let iso = parse(&Value::Text("2024-07-25T09:02:12,259+0200".into())).unwrap();
        assert_eq!(iso.date, "20240725");
        assert_eq!(iso.time, "090212.259");
        assert_eq!(iso.utc_offset.as_deref(), Some("+0200"));
        let st = parse(&Value::Struct(vec![
            Value::Word("1721890932".into()),
            Value::Word("259".into()),
            Value::Word("120".into()),
        ]))
        .unwrap();
        assert_eq!(
            (st.date.as_str(), st.time.as_str()),
            ("20240725", "090212.259")
        );
        assert!(parse(&Value::Text("garbage".into())).is_none());
    }
}
