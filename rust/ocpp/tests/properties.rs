//! Property tests: random bytes, random JSON and mutated valid frames never panic the codec,
//! and valid frames round-trip decode → encode → decode.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;
use std::sync::Arc;

mod common;

use common::TreeSink;
use evgw_ocpp::{Codec, CodecOptions, FastOutcome, JsonValue, Message, Version};
use proptest::prelude::*;

fn has_big_int(v: &JsonValue<'_>) -> bool {
    match v {
        JsonValue::BigInt(_) => true,
        JsonValue::Array(a) => a.iter().any(has_big_int),
        JsonValue::Object(o) => o.iter().any(|(_, v)| has_big_int(v)),
        _ => false,
    }
}

/// The fast path accepts exactly the CALL/CALLRESULT/SEND frames the tree path accepts, with
/// equal contents (big integers aside, which the fast path always leaves to the tree path).
fn check_fast_path(codec: &Codec, frame: &[u8]) {
    let pending = [
        ("5", "BootNotification"),
        ("r1", "Heartbeat"),
        ("6", "Nope"),
        ("s1", "NotifyPeriodicEventStream"),
    ];
    for mut sink in [TreeSink::default(), TreeSink::waiting_for(&pending)] {
        let fast = codec.decode_fast(frame, &mut sink).unwrap();
        let tree = codec.decode(frame).and_then(|m| match &m {
            Message::CallResult { message_id, .. } => match sink.lookup(message_id) {
                Some(action) => codec.bind_result(m.clone(), action),
                None => Ok(m),
            },
            _ => Ok(m),
        });
        // The one-pass diagnosis, when it answers, gives exactly the tree path's error.
        if let Some(error) = codec.diagnose(frame, &mut sink).unwrap() {
            assert_eq!(tree.as_ref().err(), Some(&error), "diagnosis differs");
        }
        if let FastOutcome::Invalid(error) = codec.decode_single_pass(frame, &mut sink).unwrap() {
            assert_eq!(
                tree.as_ref().err(),
                Some(&error),
                "single-pass error differs"
            );
        }
        let tree_parts = match &tree {
            Ok(Message::Call {
                message_id,
                action,
                payload,
            }) => Some((2, message_id, Some(*action), payload)),
            Ok(Message::CallResult {
                message_id,
                action,
                payload,
            }) => Some((3, message_id, *action, payload)),
            Ok(Message::Send {
                message_id,
                action,
                payload,
            }) => Some((6, message_id, Some(*action), payload)),
            _ => None,
        };
        match (fast, tree_parts) {
            (Some(fast), Some((message_type, message_id, action, payload))) => {
                assert_eq!(fast.message_type, message_type);
                assert_eq!(
                    fast.message_id,
                    JsonValue::Str(Cow::Owned(message_id.to_string()))
                );
                assert_eq!(fast.action, action);
                assert_eq!(
                    JsonValue::Object(Arc::new(fast.payload)),
                    JsonValue::Object(payload.clone()).to_static()
                );
            }
            (Some(_), _) => panic!("fast path accepted what the tree path gave as {tree:?}"),
            (None, Some((_, _, _, payload))) => {
                assert!(
                    has_big_int(&JsonValue::Object(payload.clone())),
                    "fast path refused a valid frame"
                );
            }
            (None, None) => {}
        }
    }
}

/// Valid frames of every version (the round-trip seeds and mutation bases).
const VALID: &[(Version, &str)] = &[
    (
        Version::V16,
        r#"[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M","firmwareVersion":"1.0"}]"#,
    ),
    (
        Version::V16,
        r#"[2,"2","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging","timestamp":"2024-05-01T10:00:00.000Z"}]"#,
    ),
    (
        Version::V16,
        r#"[2,"3","MeterValues",{"connectorId":1,"transactionId":42,"meterValue":[{"timestamp":"2024-05-01T10:00:00Z","sampledValue":[{"value":"230.1","measurand":"Voltage","phase":"L1","unit":"V"},{"value":"16","measurand":"Current.Import","phase":"L2","unit":"A"},{"value":"12345.6","measurand":"Energy.Active.Import.Register","unit":"kWh","context":"Sample.Periodic"}]}]}]"#,
    ),
    (
        Version::V16,
        r#"[2,"4","DataTransfer",{"vendorId":"x","messageId":"m","data":"é\n\"q\""}]"#,
    ),
    (
        Version::V16,
        r#"[3,"5",{"status":"Accepted","currentTime":"2024-05-01T10:00:00Z","interval":300}]"#,
    ),
    (
        Version::V16,
        r#"[4,"6","OccurenceConstraintViolation","missing",{"k":[1,2.5,null,true]}]"#,
    ),
    (
        Version::V201,
        r#"[2,"a1","BootNotification",{"chargingStation":{"model":"M1","vendorName":"V","modem":{"iccid":"1"}},"reason":"PowerUp"}]"#,
    ),
    (
        Version::V201,
        r#"[2,"a2","TransactionEvent",{"eventType":"Updated","timestamp":"2024-05-01T10:00:00Z","triggerReason":"MeterValuePeriodic","seqNo":5,"transactionInfo":{"transactionId":"tx-1"},"meterValue":[{"timestamp":"2024-05-01T10:00:00Z","sampledValue":[{"value":230.1,"measurand":"Voltage","phase":"L1-N"},{"value":16.0}]}]}]"#,
    ),
    (
        Version::V201,
        r#"[2,"a3","Heartbeat",{"customData":{"vendorId":"v","x":{"y":[1,{"z":-1e-7}]}}}]"#,
    ),
    (Version::V201, r#"[4,"a4","FormatViolation","",{}]"#),
    (
        Version::V21,
        r#"[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[{"t":0.5,"v":"1"}]}]"#,
    ),
    (Version::V21, r#"[5,"s2","FormatViolation","bad",{}]"#),
    (Version::V21, r#"[2,"s3","Heartbeat",{}]"#),
];

fn codecs() -> Vec<Codec> {
    let mut codecs: Vec<Codec> = Version::ALL
        .iter()
        .map(|v| Codec::new(*v, CodecOptions::default()).unwrap())
        .collect();
    // Tight limits, unsupported actions and lax formats exercise the other branches.
    let tight = CodecOptions {
        max_depth: 4,
        max_frame_bytes: 200,
        check_formats: false,
        supported_actions: Some(vec!["BootNotification".to_owned(), "Heartbeat".to_owned()]),
    };
    codecs.extend(
        Version::ALL
            .iter()
            .map(|v| Codec::new(*v, tight.clone()).unwrap()),
    );
    codecs
}

/// Re-encode a decoded message where the codec can (CALL, SEND, CALLERROR).
fn reencode(codec: &Codec, message: &Message<'_>) -> Option<String> {
    match message {
        Message::Call {
            message_id,
            action,
            payload,
        } => Some(
            codec
                .encode_call(message_id, action, &JsonValue::Object(payload.clone()))
                .unwrap(),
        ),
        Message::Send {
            message_id,
            action,
            payload,
        } => Some(
            codec
                .encode_send(message_id, action, &JsonValue::Object(payload.clone()))
                .unwrap(),
        ),
        Message::CallResult {
            message_id,
            action: Some(action),
            payload,
        } => Some(
            codec
                .encode_result(message_id, action, &JsonValue::Object(payload.clone()))
                .unwrap(),
        ),
        Message::CallError {
            message_id,
            code,
            description,
            details,
        } if evgw_ocpp::ErrorKind::from_code(code).is_some()
            && description.chars().count() <= 255 =>
        {
            Some(
                codec
                    .encode_error(
                        message_id,
                        code,
                        description,
                        Some(&JsonValue::Object(details.clone())),
                    )
                    .unwrap(),
            )
        }
        _ => None,
    }
}

/// Decode with every codec: must not panic; a success must round-trip; the fast path agrees.
fn check(frame: &[u8]) {
    for codec in codecs() {
        check_fast_path(&codec, frame);
        if let Ok(message) = codec.decode(frame) {
            // Re-encoding may write a longer frame (escapes, float forms) than a tight
            // max_frame_bytes allows; only frames the codec would take again round-trip.
            let reencoded =
                reencode(&codec, &message).filter(|t| t.len() <= codec.max_frame_bytes());
            if let Some(text) = reencoded {
                let again = codec.decode(text.as_bytes()).unwrap();
                // Codes are rewritten in the version's spelling; compare the rest exactly.
                match (&message, &again) {
                    (Message::CallError { .. }, Message::CallError { .. }) => {
                        assert_eq!(message.message_id(), again.message_id());
                    }
                    _ => assert_eq!(message, again, "{text}"),
                }
            }
        }
    }
}

/// Walk down `path` (indices into arrays and objects), then replace what is there, or
/// remove the last object member on the way when `remove` is set.
fn replace_at(
    node: &mut serde_json::Value,
    path: &[prop::sample::Index],
    replacement: serde_json::Value,
    remove: bool,
) {
    let Some((step, rest)) = path.split_first() else {
        *node = replacement;
        return;
    };
    match node {
        serde_json::Value::Array(a) if !a.is_empty() => {
            let i = step.index(a.len());
            replace_at(&mut a[i], rest, replacement, remove);
        }
        serde_json::Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(step.index(m.len())).unwrap().clone();
            if remove && rest.is_empty() {
                m.remove(&key);
            } else {
                replace_at(m.get_mut(&key).unwrap(), rest, replacement, remove);
            }
        }
        _ => *node = replacement,
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[ -~é€😀]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "Heartbeat",
            "BootNotification",
            "MeterValues",
            "Accepted",
            "2024-01-01T00:00:00Z",
            "connectorId",
            "status"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec(("[a-zA-Z]{1,10}", inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes);
    }

    #[test]
    fn random_json_never_panics(value in json_value()) {
        check(value.to_string().as_bytes());
    }

    #[test]
    fn random_payloads_in_frames_never_panic(
        message_type in 0i64..8,
        id in "[ -~]{0,40}",
        action in prop::sample::select(vec!["Heartbeat", "BootNotification", "MeterValues", "StatusNotification", "TransactionEvent", "Nope", "NotifyPeriodicEventStream"]),
        payload in json_value(),
    ) {
        let frame = serde_json::json!([message_type, id, action, payload]).to_string();
        check(frame.as_bytes());
        let frame = serde_json::json!([message_type, id, payload]).to_string();
        check(frame.as_bytes());
        let frame = serde_json::json!([message_type, id, action, "desc", payload]).to_string();
        check(frame.as_bytes());
    }

    #[test]
    fn byte_mutations_of_valid_frames_never_panic(
        seed in 0..VALID.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut bytes = VALID[seed].1.as_bytes().to_vec();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                2 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        check(&bytes);
    }

    #[test]
    fn structural_mutations_of_valid_frames_never_panic(
        seed in 0..VALID.len(),
        path in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        replacement in json_value(),
        remove in any::<bool>(),
    ) {
        let mut value: serde_json::Value = serde_json::from_str(VALID[seed].1).unwrap();
        replace_at(&mut value, &path, replacement, remove);
        check(value.to_string().as_bytes());
    }
}

#[test]
fn valid_frames_decode_and_round_trip() {
    for (version, frame) in VALID {
        let codec = Codec::new(*version, CodecOptions::default()).unwrap();
        let message = codec
            .decode(frame.as_bytes())
            .unwrap_or_else(|e| panic!("{frame}: {e}"));
        let message = match message {
            Message::CallResult { .. } => codec.bind_result(message, "BootNotification").unwrap(),
            m => m,
        };
        check_fast_path(&codec, frame.as_bytes());
        let fast = codec
            .decode_fast(frame.as_bytes(), &mut TreeSink::default())
            .unwrap();
        assert_eq!(
            fast.is_some(),
            matches!(
                message,
                Message::Call { .. } | Message::Send { .. } | Message::CallResult { .. }
            )
        );
        let Some(text) = reencode(&codec, &message) else {
            assert!(
                matches!(message, Message::CallResultError { .. }),
                "{frame}"
            );
            continue; // the codec writes CALLRESULTERRORs only as OcppError::error_frame
        };
        assert_eq!(
            codec
                .decode(text.as_bytes())
                .map(|m| m.message_id().to_owned())
                .unwrap(),
            message.message_id()
        );
        // Compact output of compact input is the input itself (no floats reformatted here
        // except 16.0, which stays 16.0).
        assert_eq!(&text, frame, "{version}");
    }
}

/// Schema violations in well-formed frames are diagnosed in one pass, as the tree path
/// describes them.
#[test]
fn schema_violations_are_diagnosed_in_one_pass() {
    let cases: &[(Version, &str)] = &[
        (
            Version::V16,
            r#"[2,"i","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Charging"}]"#,
        ),
        (
            Version::V16,
            r#"[2,"i","StatusNotification",{"connectorId":1,"status":"Charging","info":7}]"#,
        ),
        (
            Version::V16,
            r#"[2,"i","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Busy"}]"#,
        ),
        (
            Version::V16,
            r#"[2,"i","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"2024-05-01T10:00:00Z","sampledValue":[{"value":"1"},{"value":2}]}]}]"#,
        ),
        (
            Version::V16,
            r#"[2,"i","MeterValues",{"connectorId":1,"meterValue":[]}]"#,
        ),
        (
            Version::V201,
            r#"[2,"i","BootNotification",{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp","x":{"y":[1]}}]"#,
        ),
        (
            Version::V201,
            r#"[2,"i","BootNotification",{"chargingStation":{"model":"MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM","vendorName":"V"},"reason":"PowerUp"}]"#,
        ),
        (
            Version::V201,
            r#"[2,"i","TransactionEvent",{"eventType":"Updated","timestamp":"nope","triggerReason":"MeterValuePeriodic","seqNo":1.5,"transactionInfo":{"transactionId":"t"}}]"#,
        ),
        (
            Version::V21,
            r#"[6,"i","NotifyPeriodicEventStream",{"id":1}]"#,
        ),
    ];
    for (version, frame) in cases {
        let codec = Codec::new(*version, CodecOptions::default()).unwrap();
        let diagnosed = codec
            .diagnose(frame.as_bytes(), &mut TreeSink::default())
            .unwrap();
        assert!(diagnosed.is_some(), "not diagnosed: {frame}");
        assert_eq!(codec.decode(frame.as_bytes()).err(), diagnosed, "{frame}");
        match codec
            .decode_single_pass(frame.as_bytes(), &mut TreeSink::default())
            .unwrap()
        {
            FastOutcome::Invalid(error) => assert_eq!(Some(error), diagnosed, "{frame}"),
            _ => panic!("single pass did not refuse {frame}"),
        }
        check(frame.as_bytes());
    }
    let result = r#"[3,"5",{"status":"Fine","currentTime":"2024-05-01T10:00:00Z","interval":300}]"#;
    let codec = Codec::new(Version::V16, CodecOptions::default()).unwrap();
    let mut sink = TreeSink::waiting_for(&[("5", "BootNotification")]);
    let diagnosed = codec.diagnose(result.as_bytes(), &mut sink).unwrap();
    let tree = codec
        .decode(result.as_bytes())
        .and_then(|m| codec.bind_result(m, "BootNotification"));
    assert!(diagnosed.is_some());
    assert_eq!(tree.err(), diagnosed);
    match codec
        .decode_single_pass(result.as_bytes(), &mut sink)
        .unwrap()
    {
        FastOutcome::Invalid(error) => assert_eq!(Some(error), diagnosed),
        _ => panic!("single pass did not refuse the result"),
    }
}
