//! S3 event notifications as they reach an SQS queue: S3's own records, the same in an
//! SNS envelope (S3 → SNS → SQS), and EventBridge's "Object Created" / "Object Deleted".
//! Keys in S3's records are URL-encoded (`+` for a space); EventBridge's are not.

use aws_smithy_types::date_time::{DateTime, Format};
use percent_encoding::percent_decode_str;
use serde_json::Value;

/// One change to one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub bucket: String,
    pub key: String,
    /// `Some((etag, size))` for a created object, `None` for a removed one.
    pub created: Option<(String, i64)>,
    /// S3's ordering of the events of one key (hexadecimal), when the record has one.
    pub sequencer: Option<String>,
    /// When it happened, in Unix seconds.
    pub time: Option<f64>,
}

impl Event {
    /// The event as far as it can be believed, or why it is dropped.
    fn checked(mut self, now: f64) -> Result<Event, String> {
        let shown: String = self.key.chars().take(100).collect();
        if self.key.is_empty() || self.key.len() > MAX_KEY_BYTES || self.key.contains('\0') {
            return Err(format!(
                "the key {shown:?} is not one S3 makes (1 to {MAX_KEY_BYTES} bytes of UTF-8, no NUL)"
            ));
        }
        if let Some((etag, _)) = &self.created {
            if etag.len() > MAX_KEY_BYTES || etag.contains('\0') {
                return Err(format!("the ETag of the key {shown:?} is not one S3 makes"));
            }
        }
        self.sequencer = self.sequencer.filter(|s| {
            !s.is_empty() && s.len() <= MAX_SEQUENCER && s.bytes().all(|b| b.is_ascii_hexdigit())
        });
        self.time = self
            .time
            .filter(|t| t.is_finite() && *t <= now + FUTURE_SLACK);
        Ok(self)
    }

    /// When it happened, in RFC 3339.
    pub fn time_text(&self) -> Option<String> {
        DateTime::from_secs_f64(self.time?)
            .fmt(Format::DateTime)
            .ok()
    }
}

/// The longest key S3 makes, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest sequencer believed: S3's are 16 to 18 hexadecimal digits.
const MAX_SEQUENCER: usize = 32;
/// How far ahead of the server's clock an event's time is still believed, in seconds.
const FUTURE_SLACK: f64 = 15.0 * 60.0;

/// A message's events, and why each record that is not one S3 makes was dropped.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub dropped: Vec<String>,
}

/// The events of a message body: none for a test event or for event types a sync does
/// not act on (tagging, restores, …); an error for anything that is not an S3 event.
/// Event input is hostile input: a record whose key S3 cannot have made (not UTF-8, a
/// NUL, longer than [`MAX_KEY_BYTES`]) is dropped, a sequencer not in S3's form is not
/// believed, nor a time more than [`FUTURE_SLACK`] ahead of `now` (Unix seconds).
pub fn parse(body: &str, now: f64) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
    let mut parsed = Parsed::default();
    for record in from_value(&value, true)? {
        match record.and_then(|e| e.checked(now)) {
            Ok(event) => parsed.events.push(event),
            Err(why) => parsed.dropped.push(why),
        }
    }
    Ok(parsed)
}

type Records = Vec<Result<Event, String>>;

fn from_value(value: &Value, may_be_envelope: bool) -> Result<Records, String> {
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        return Ok(records
            .iter()
            .filter_map(|r| s3_record(r).transpose())
            .collect());
    }
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if value.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return Ok(eventbridge(value).transpose().into_iter().collect());
    }
    if may_be_envelope && value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner = value
            .get("Message")
            .and_then(Value::as_str)
            .ok_or("an SNS notification without a Message")?;
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| format!("an SNS notification whose Message is not JSON ({e})"))?;
        return from_value(&inner, false);
    }
    Err(
        "not an S3 event notification (no Records, no EventBridge aws.s3 source, no SNS envelope)"
            .into(),
    )
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn number(v: &Value, path: &[&str]) -> Option<i64> {
    let v = path.iter().try_fold(v, |v, k| v.get(k))?;
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn unix_time(s: Option<&str>) -> Option<f64> {
    DateTime::from_str(s?, Format::DateTime)
        .ok()
        .map(|t| t.as_secs_f64())
}

fn s3_record(r: &Value) -> Result<Option<Event>, String> {
    let name = text(r, &["eventName"]).ok_or("an S3 record without eventName")?;
    let created = if name.starts_with("ObjectCreated:") {
        true
    } else if name.starts_with("ObjectRemoved:") {
        false
    } else {
        return Ok(None);
    };
    let bucket = text(r, &["s3", "bucket", "name"]).ok_or("an S3 record without s3.bucket.name")?;
    let raw = text(r, &["s3", "object", "key"]).ok_or("an S3 record without s3.object.key")?;
    let key = percent_decode_str(&raw.replace('+', " "))
        .decode_utf8()
        .map_err(|_| format!("the key \"{raw}\" does not decode to UTF-8"))?
        .into_owned();
    Ok(Some(Event {
        bucket: bucket.to_string(),
        key,
        created: created.then(|| {
            (
                text(r, &["s3", "object", "eTag"])
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                number(r, &["s3", "object", "size"]).unwrap_or(0),
            )
        }),
        sequencer: text(r, &["s3", "object", "sequencer"]).map(str::to_string),
        time: unix_time(text(r, &["eventTime"])),
    }))
}

fn eventbridge(v: &Value) -> Result<Option<Event>, String> {
    let created = match text(v, &["detail-type"]) {
        Some("Object Created") => true,
        Some("Object Deleted") => false,
        Some(_) => return Ok(None),
        None => return Err("an EventBridge event without detail-type".into()),
    };
    let detail = v
        .get("detail")
        .ok_or("an EventBridge event without detail")?;
    let bucket = text(detail, &["bucket", "name"])
        .ok_or("an EventBridge event without detail.bucket.name")?;
    let key =
        text(detail, &["object", "key"]).ok_or("an EventBridge event without detail.object.key")?;
    Ok(Some(Event {
        bucket: bucket.to_string(),
        key: key.to_string(),
        created: created.then(|| {
            (
                text(detail, &["object", "etag"])
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                number(detail, &["object", "size"]).unwrap_or(0),
            )
        }),
        sequencer: text(detail, &["object", "sequencer"]).map(str::to_string),
        time: unix_time(text(v, &["time"])),
    }))
}

/// What the sync last knew of a key, for ordering: the sequencer and time of the last
/// event it applied, and the object's last modification as listed (Unix seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub sequencer: Option<String>,
    pub event_time: Option<f64>,
    pub last_modified: Option<f64>,
}

/// Whether `event` is older than what the sync already applied for its key, and must
/// not undo it: by S3's sequencer when both have one (hexadecimal, compared as numbers),
/// else by time. A listing's modification time has whole seconds: only an event before
/// that second is older.
pub fn is_stale(event: &Event, seen: &Seen) -> bool {
    if let (Some(new), Some(old)) = (&event.sequencer, &seen.sequencer) {
        return compare_sequencers(new, old) != std::cmp::Ordering::Greater;
    }
    let Some(time) = event.time else {
        return false;
    };
    seen.event_time.is_some_and(|t| time < t)
        || seen.last_modified.is_some_and(|t| time < t.floor())
}

fn compare_sequencers(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len()
        .cmp(&b.len())
        .then_with(|| a.to_ascii_uppercase().cmp(&b.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-12-01, a day after the records' times.
    const NOW: f64 = 1_796_083_200.0;

    fn record(name: &str, key: &str, sequencer: &str) -> Value {
        json!({"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
               "eventTime": "2026-11-30T10:00:00.250Z",
               "s3": {"bucket": {"name": "docs"},
                      "object": {"key": key, "size": 12, "eTag": "abc", "sequencer": sequencer}}})
    }

    #[test]
    fn s3_records_with_encoded_keys() {
        let body = json!({"Records": [record("ObjectCreated:Put", "a+b%2Bc/%C3%BC.md", "0A"),
                                      record("ObjectRemoved:Delete", "x.md", "0B"),
                                      record("ObjectTagging:Put", "x.md", "0C")]});
        let events = parse(&body.to_string(), NOW).unwrap().events;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].key, "a b+c/ü.md");
        assert_eq!(events[0].created, Some(("abc".to_string(), 12)));
        assert_eq!(events[0].time, Some(1_796_032_800.25));
        assert_eq!(events[1].created, None);
        assert_eq!(events[1].sequencer.as_deref(), Some("0B"));
    }

    #[test]
    fn envelopes_test_events_and_eventbridge() {
        let s3 = json!({"Records": [record("ObjectCreated:Copy", "k", "1")]}).to_string();
        let sns = json!({"Type": "Notification", "MessageId": "m", "Message": s3}).to_string();
        assert_eq!(parse(&sns, NOW).unwrap(), parse(&s3, NOW).unwrap());
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "docs"});
        assert_eq!(parse(&test.to_string(), NOW).unwrap(), Parsed::default());
        let eb = json!({"version": "0", "detail-type": "Object Deleted", "source": "aws.s3",
                        "time": "2026-11-30T10:00:00Z",
                        "detail": {"bucket": {"name": "docs"},
                                   "object": {"key": "raw/a+b:c.md", "sequencer": "0064"}}});
        let e = &parse(&eb.to_string(), NOW).unwrap().events[0];
        assert_eq!(
            (e.key.as_str(), e.created.is_none()),
            ("raw/a+b:c.md", true)
        );
        for poison in [
            "not json",
            "{}",
            "[1]",
            r#"{"Type": "Notification", "Message": "x"}"#,
        ] {
            assert!(parse(poison, NOW).is_err(), "{poison}");
        }
    }

    #[test]
    fn records_s3_cannot_have_made_are_dropped_and_forged_order_is_not_believed() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        let body = json!({"Records": [record("ObjectCreated:Put", "zero%00tail.md", "0A"),
                                      record("ObjectCreated:Put", "zero", "0B"),
                                      record("ObjectCreated:Put", &long, "0C"),
                                      record("ObjectCreated:Put", "%FF.md", "0D"),
                                      record("ObjectRemoved:Delete", "pinned", &"F".repeat(300)),
                                      record("ObjectRemoved:Delete", "odd", "12zz")]});
        let parsed = parse(&body.to_string(), NOW).unwrap();
        let keys: Vec<&str> = parsed.events.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["zero", "pinned", "odd"]);
        assert_eq!(parsed.dropped.len(), 3, "{:?}", parsed.dropped);
        assert!(
            parsed.dropped[0].contains("\"zero\\0tail.md\" is not one S3 makes"),
            "{:?}",
            parsed.dropped
        );
        assert!(
            parsed.dropped[2].contains("does not decode to UTF-8"),
            "{:?}",
            parsed.dropped
        );
        assert_eq!(parsed.events[0].sequencer.as_deref(), Some("0B"));
        assert_eq!(parsed.events[1].sequencer, None, "300 digits");
        assert_eq!(parsed.events[2].sequencer, None, "not hexadecimal");
        let mut future = record("ObjectRemoved:Delete", "later", "0E");
        future["eventTime"] = json!("9999-12-31T23:59:59Z");
        let parsed = parse(&json!({"Records": [future]}).to_string(), NOW).unwrap();
        assert_eq!(parsed.events[0].time, None);
        assert_eq!(
            parse(
                &json!({"Records": [record("ObjectRemoved:Delete", "now", "0F")]}).to_string(),
                NOW
            )
            .unwrap()
            .events[0]
                .time,
            Some(1_796_032_800.25)
        );
    }

    #[test]
    fn older_events_are_stale() {
        let event = |seq: Option<&str>, time: f64| Event {
            bucket: "docs".into(),
            key: "k".into(),
            created: None,
            sequencer: seq.map(str::to_string),
            time: Some(time),
        };
        let seen = Seen {
            sequencer: Some("00A1".into()),
            event_time: Some(100.0),
            last_modified: None,
        };
        assert!(is_stale(&event(Some("009F"), 200.0), &seen));
        assert!(is_stale(&event(Some("A1"), 200.0), &seen), "a duplicate");
        assert!(!is_stale(&event(Some("0100"), 50.0), &seen));
        assert!(!is_stale(&event(Some("a2"), 50.0), &seen));
        let listed = Seen {
            last_modified: Some(100.7),
            ..Default::default()
        };
        assert!(is_stale(&event(None, 99.9), &listed));
        assert!(!is_stale(&event(None, 100.2), &listed));
        assert!(!is_stale(&event(None, 1.0), &Seen::default()));
    }
}
