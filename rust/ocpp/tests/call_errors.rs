//! One test per CallError case, for OCPP 1.6 and 2.0.1 (and 2.1's message types 5 and 6):
//! the error kind, the code as each version spells it, the id answered with, and whether a
//! reply is due.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use evgw_ocpp::{
    Codec, CodecOptions, EncodeError, ErrorKind, JsonValue, Message, OcppError, Version,
    MAX_MESSAGE_ID_LENGTH,
};

const V16: Version = Version::V16;
const V201: Version = Version::V201;
const V21: Version = Version::V21;

fn codec(version: Version) -> Codec {
    Codec::new(version, CodecOptions::default()).unwrap()
}

fn decode_err(version: Version, frame: &str) -> OcppError {
    match codec(version).decode(frame.as_bytes()) {
        Ok(m) => panic!("{version}: {frame} decoded as {m:?}"),
        Err(e) => e,
    }
}

/// Assert kind, the version's code, the id and that a reply is due.
#[track_caller]
fn expect(version: Version, frame: &str, kind: ErrorKind, code: &str, id: &str) -> OcppError {
    let e = decode_err(version, frame);
    assert_eq!(e.kind, kind, "{version} {frame}: {}", e.description);
    assert_eq!(e.code(version), code, "{version} {frame}");
    assert_eq!(e.message_id, id, "{version} {frame}");
    assert!(e.should_reply, "{version} {frame}");
    assert!(e.description.chars().count() <= 255);
    let reply = e.error_frame(version).unwrap();
    assert!(
        reply.starts_with(&format!("[4,\"{id}\",\"{code}\",")),
        "{reply}"
    );
    e
}

/// The RPC-framework case: FormationViolation on 1.6, RpcFrameworkError on 2.x, id "-1".
#[track_caller]
fn expect_rpc(frame: &str) {
    expect(
        V16,
        frame,
        ErrorKind::RpcFrameworkError,
        "FormationViolation",
        "-1",
    );
    expect(
        V201,
        frame,
        ErrorKind::RpcFrameworkError,
        "RpcFrameworkError",
        "-1",
    );
    expect(
        V21,
        frame,
        ErrorKind::RpcFrameworkError,
        "RpcFrameworkError",
        "-1",
    );
}

/// A case with the same code on every version, answered with the frame's id.
#[track_caller]
fn expect_all(
    frame16: &str,
    frame2: &str,
    kind: ErrorKind,
    code16: &str,
    code2: &str,
    id: &str,
) -> OcppError {
    expect(V16, frame16, kind, code16, id);
    expect(V21, frame2, kind, code2, id);
    expect(V201, frame2, kind, code2, id)
}

const BOOT16: &str = r#"{"chargePointVendor":"V","chargePointModel":"M"}"#;
const BOOT2: &str = r#"{"chargingStation":{"model":"M","vendorName":"V"},"reason":"PowerUp"}"#;

fn call(action: &str, payload: &str) -> String {
    format!(r#"[2,"id-1","{action}",{payload}]"#)
}

#[test]
fn valid_calls_decode() {
    let frame = call("BootNotification", BOOT16);
    let m = codec(V16).decode(frame.as_bytes()).unwrap();
    assert!(matches!(
        m,
        Message::Call {
            action: "BootNotification",
            ..
        }
    ));
    let frame = call("BootNotification", BOOT2);
    let m = codec(V201).decode(frame.as_bytes()).unwrap();
    assert_eq!(m.message_id(), "id-1");
}

#[test]
fn invalid_json_is_rpc_framework_error() {
    expect_rpc("[2,\"a\",");
    expect_rpc("");
    expect_rpc("[2,\"a\",\"Heartbeat\",{}] trailing");
    expect_rpc("\u{0}");
}

#[test]
fn invalid_utf8_is_rpc_framework_error() {
    let e = codec(V201)
        .decode(b"[2,\"\xff\",\"Heartbeat\",{}]")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::RpcFrameworkError);
}

#[test]
fn frame_not_an_array_is_rpc_framework_error() {
    expect_rpc("{}");
    expect_rpc("\"text\"");
    expect_rpc("2");
    expect_rpc("null");
}

#[test]
fn empty_array_is_rpc_framework_error() {
    expect_rpc("[]");
}

#[test]
fn message_type_not_an_integer_is_rpc_framework_error() {
    expect_rpc(r#"["2","a","Heartbeat",{}]"#);
    expect_rpc(r#"[2.0,"a","Heartbeat",{}]"#);
    expect_rpc(r#"[null,"a","Heartbeat",{}]"#);
}

#[test]
fn unreadable_message_id_is_rpc_framework_error() {
    expect_rpc("[2]");
    expect_rpc(r#"[2,17,"Heartbeat",{}]"#);
    expect_rpc(r#"[2,null,"Heartbeat",{}]"#);
    expect_rpc(r#"[2,"","Heartbeat",{}]"#);
    expect_rpc(r#"[3,{"id":"x"},{}]"#);
}

#[test]
fn message_id_length_limit() {
    let max = "x".repeat(MAX_MESSAGE_ID_LENGTH);
    for v in Version::ALL {
        assert!(codec(v)
            .decode(format!(r#"[2,"{max}","Heartbeat",{{}}]"#).as_bytes())
            .is_ok());
        // Characters, not bytes: 36 two-byte characters are fine.
        let wide = "é".repeat(MAX_MESSAGE_ID_LENGTH);
        assert!(codec(v)
            .decode(format!(r#"[2,"{wide}","Heartbeat",{{}}]"#).as_bytes())
            .is_ok());
    }
    expect_rpc(&format!(r#"[2,"{max}x","Heartbeat",{{}}]"#));
}

#[test]
fn frame_over_size_limit_is_rpc_framework_error() {
    let options = CodecOptions {
        max_frame_bytes: 64,
        ..CodecOptions::default()
    };
    let frame = call("BootNotification", BOOT16);
    assert!(frame.len() > 64);
    for (v, code) in [(V16, "FormationViolation"), (V201, "RpcFrameworkError")] {
        let e = Codec::new(v, options.clone())
            .unwrap()
            .decode(frame.as_bytes())
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code(v), e.message_id.as_str()),
            (ErrorKind::RpcFrameworkError, code, "-1")
        );
        assert!(
            e.description.contains("max_frame_bytes (64)"),
            "{}",
            e.description
        );
    }
}

#[test]
fn frame_over_depth_limit_is_rpc_framework_error() {
    // DataTransfer.data is a string, so nesting can only appear in a bad place; the depth
    // check comes first.
    let nested = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let frame = format!(r#"[2,"a","DataTransfer",{{"vendorId":"v","data":{nested}}}]"#);
    expect(
        V16,
        &frame,
        ErrorKind::RpcFrameworkError,
        "FormationViolation",
        "-1",
    );
    let e = expect(
        V201,
        &frame,
        ErrorKind::RpcFrameworkError,
        "RpcFrameworkError",
        "-1",
    );
    assert!(
        e.description.contains("max_depth (32)"),
        "{}",
        e.description
    );
    // Far beyond jiter's own limit: still a clean error, no stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    expect_rpc(&deep);
    let deep_objects = "{\"a\":".repeat(50_000);
    expect_rpc(&deep_objects);
    // Exactly at the limit is fine: frame(1) + payload(2) + 29 more levels.
    let options = CodecOptions {
        max_depth: 3,
        ..CodecOptions::default()
    };
    let c = Codec::new(V201, options).unwrap();
    assert!(c.decode(br#"[2,"a","Heartbeat",{}]"#).is_ok());
    assert!(c.decode(br#"[3,"a",{"x":{"y":1}}]"#).is_ok());
    assert_eq!(
        c.decode(br#"[3,"a",{"x":{"y":[]}}]"#).unwrap_err().kind,
        ErrorKind::RpcFrameworkError
    );
}

#[test]
fn unknown_message_type_is_message_type_not_supported_on_2x() {
    for t in ["0", "1", "7", "-2", "99999999999"] {
        let frame = format!(r#"[{t},"abc","Heartbeat",{{}}]"#);
        expect(
            V201,
            &frame,
            ErrorKind::MessageTypeNotSupported,
            "MessageTypeNotSupported",
            "abc",
        );
        expect(
            V21,
            &frame,
            ErrorKind::MessageTypeNotSupported,
            "MessageTypeNotSupported",
            "abc",
        );
    }
    // Id unreadable: answered with "-1".
    expect(
        V201,
        "[7]",
        ErrorKind::MessageTypeNotSupported,
        "MessageTypeNotSupported",
        "-1",
    );
}

#[test]
fn unknown_message_type_is_ignored_on_16() {
    let e = decode_err(V16, r#"[7,"abc",{}]"#);
    assert_eq!(e.kind, ErrorKind::MessageTypeNotSupported);
    assert!(!e.should_reply);
    assert_eq!(e.error_frame(V16), None);
}

#[test]
fn types_5_and_6_exist_only_on_21() {
    for frame in [
        r#"[5,"abc","FormatViolation","",{}]"#,
        r#"[6,"abc","Heartbeat",{}]"#,
    ] {
        expect(
            V201,
            frame,
            ErrorKind::MessageTypeNotSupported,
            "MessageTypeNotSupported",
            "abc",
        );
        let e = decode_err(V16, frame);
        assert_eq!(e.kind, ErrorKind::MessageTypeNotSupported);
        assert!(!e.should_reply);
    }
    let c = codec(V21);
    let m = c
        .decode(br#"[5,"abc","FormatViolation","bad result",{}]"#)
        .unwrap();
    assert!(matches!(m, Message::CallResultError { ref code, .. } if code == "FormatViolation"));
    let m = c.decode(br#"[6,"abc","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[{"t":0.5,"v":"1"}]}]"#).unwrap();
    assert!(matches!(
        m,
        Message::Send {
            action: "NotifyPeriodicEventStream",
            ..
        }
    ));
}

#[test]
fn invalid_send_is_never_answered() {
    let c = codec(V21);
    for frame in [
        r#"[6,"abc","NotifyPeriodicEventStream",{}]"#,
        r#"[6,"abc","Nope",{}]"#,
        r#"[6,"abc","Heartbeat"]"#,
        r#"[6,"abc","Heartbeat",[]]"#,
    ] {
        let e = c.decode(frame.as_bytes()).unwrap_err();
        assert!(!e.should_reply, "{frame}");
        assert_eq!(e.error_frame(V21), None);
    }
}

/// A broken response: CALLRESULT errors are answered only on 2.1, as CALLRESULTERROR;
/// CALLERROR (and 2.1 CALLRESULTERROR) errors never.
#[track_caller]
fn expect_unanswered_response(frame: &str, kind: ErrorKind, code16: &str, code2: &str) {
    for v in Version::ALL {
        let e = decode_err(v, frame);
        let code = if v == V16 { code16 } else { code2 };
        assert_eq!(
            (e.kind, e.code(v), e.message_id.as_str()),
            (kind, code, "abc"),
            "{v} {frame}"
        );
        if frame.starts_with("[3,") && v == V21 {
            assert!(e.should_reply);
            let reply = e.error_frame(v).unwrap();
            assert!(
                reply.starts_with(&format!("[5,\"abc\",\"{code}\",")),
                "{reply}"
            );
        } else {
            assert!(!e.should_reply, "{v} {frame}");
            assert_eq!(e.error_frame(v), None);
        }
    }
}

#[test]
fn wrong_element_count_is_protocol_error() {
    for frame in [r#"[2,"abc","Heartbeat"]"#, r#"[2,"abc","Heartbeat",{},{}]"#] {
        expect_all(
            frame,
            frame,
            ErrorKind::ProtocolError,
            "ProtocolError",
            "ProtocolError",
            "abc",
        );
    }
    for frame in [
        r#"[3,"abc"]"#,
        r#"[3,"abc",{},{}]"#,
        r#"[4,"abc","GenericError",""]"#,
        r#"[4,"abc","GenericError","",{},1]"#,
    ] {
        expect_unanswered_response(
            frame,
            ErrorKind::ProtocolError,
            "ProtocolError",
            "ProtocolError",
        );
    }
    let e = codec(V21)
        .decode(br#"[5,"abc","GenericError"]"#)
        .unwrap_err();
    assert_eq!((e.kind, e.should_reply), (ErrorKind::ProtocolError, false));
}

#[test]
fn wrong_element_types_are_protocol_error() {
    for frame in [r#"[2,"abc",5,{}]"#, r#"[2,"abc",null,{}]"#] {
        expect_all(
            frame,
            frame,
            ErrorKind::ProtocolError,
            "ProtocolError",
            "ProtocolError",
            "abc",
        );
    }
    for frame in [
        r#"[4,"abc",5,"",{}]"#,
        r#"[4,"abc","GenericError",5,{}]"#,
        r#"[4,"abc","GenericError","",[]]"#,
        r#"[4,"abc","GenericError","",null]"#,
    ] {
        expect_unanswered_response(
            frame,
            ErrorKind::ProtocolError,
            "ProtocolError",
            "ProtocolError",
        );
    }
}

#[test]
fn payload_not_an_object_is_format_violation() {
    for payload in ["[]", "null", "\"x\"", "1"] {
        let frame = format!(r#"[2,"abc","Heartbeat",{payload}]"#);
        expect_all(
            &frame,
            &frame,
            ErrorKind::FormatViolation,
            "FormationViolation",
            "FormatViolation",
            "abc",
        );
        let frame = format!(r#"[3,"abc",{payload}]"#);
        expect_unanswered_response(
            &frame,
            ErrorKind::FormatViolation,
            "FormationViolation",
            "FormatViolation",
        );
    }
}

#[test]
fn unknown_action_is_not_implemented() {
    for action in [
        "Foo",
        "heartbeat",
        "BootNotificationResponse",
        "BootNotificationRequest",
        "",
    ] {
        let frame = call(action, "{}");
        expect_all(
            &frame,
            &frame,
            ErrorKind::NotImplemented,
            "NotImplemented",
            "NotImplemented",
            "id-1",
        );
    }
    // 2.0.1-only action on 1.6, 1.6-only action on 2.0.1.
    expect(
        V16,
        &call("TransactionEvent", "{}"),
        ErrorKind::NotImplemented,
        "NotImplemented",
        "id-1",
    );
    expect(
        V201,
        &call("StartTransaction", "{}"),
        ErrorKind::NotImplemented,
        "NotImplemented",
        "id-1",
    );
}

#[test]
fn known_but_unsupported_action_is_not_supported() {
    for (v, boot) in [(V16, BOOT16), (V201, BOOT2)] {
        let options = CodecOptions {
            supported_actions: Some(vec!["BootNotification".to_owned()]),
            ..CodecOptions::default()
        };
        let c = Codec::new(v, options).unwrap();
        assert!(c.decode(call("BootNotification", boot).as_bytes()).is_ok());
        let e = c.decode(call("Heartbeat", "{}").as_bytes()).unwrap_err();
        assert_eq!(
            (e.kind, e.code(v)),
            (ErrorKind::NotSupported, "NotSupported")
        );
        // Unknown beats unsupported.
        let e = c.decode(call("Foo", "{}").as_bytes()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotImplemented);
    }
    let bad = CodecOptions {
        supported_actions: Some(vec!["Foo".to_owned()]),
        ..CodecOptions::default()
    };
    assert!(Codec::new(V16, bad).is_err());
}

#[test]
fn missing_required_is_occurrence_constraint_violation() {
    let e16 = expect_all(
        &call("BootNotification", r#"{"chargePointVendor":"V"}"#),
        &call("BootNotification", r#"{"reason":"PowerUp"}"#),
        ErrorKind::OccurrenceConstraintViolation,
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
        "id-1",
    );
    assert_eq!(
        e16.description,
        r#"required property "chargingStation" is missing"#
    );
    let e = decode_err(
        V201,
        &call(
            "BootNotification",
            r#"{"chargingStation":{"model":"M"},"reason":"PowerUp"}"#,
        ),
    );
    assert_eq!(
        e.description,
        r#"chargingStation: required property "vendorName" is missing"#
    );
}

#[test]
fn too_few_or_too_many_items_is_occurrence_constraint_violation() {
    // minItems: MeterValues needs at least one meterValue.
    expect(
        V16,
        &call("MeterValues", r#"{"connectorId":1,"meterValue":[]}"#),
        ErrorKind::OccurrenceConstraintViolation,
        "OccurenceConstraintViolation",
        "id-1",
    );
    expect(
        V201,
        &call("MeterValues", r#"{"evseId":1,"meterValue":[]}"#),
        ErrorKind::OccurrenceConstraintViolation,
        "OccurrenceConstraintViolation",
        "id-1",
    );
    // maxItems: at most 4 iso15118CertificateHashData in a 2.0.1 Authorize.
    let hash = r#"{"hashAlgorithm":"SHA256","issuerNameHash":"a","issuerKeyHash":"b","serialNumber":"c","responderURL":"http://x"}"#;
    let list = [hash; 5].join(",");
    let frame = call(
        "Authorize",
        &format!(
            r#"{{"idToken":{{"idToken":"t","type":"ISO14443"}},"iso15118CertificateHashData":[{list}]}}"#
        ),
    );
    expect(
        V201,
        &frame,
        ErrorKind::OccurrenceConstraintViolation,
        "OccurrenceConstraintViolation",
        "id-1",
    );
}

#[test]
fn wrong_type_is_type_constraint_violation() {
    let e = expect_all(
        &call("StatusNotification", r#"{"connectorId":"1","errorCode":"NoError","status":"Available"}"#),
        &call("Heartbeat", "{}").replace("Heartbeat\",{}", r#"StatusNotification",{"timestamp":"2024-01-01T00:00:00Z","connectorStatus":"Available","evseId":"1","connectorId":1}"#),
        ErrorKind::TypeConstraintViolation,
        "TypeConstraintViolation",
        "TypeConstraintViolation",
        "id-1",
    );
    assert_eq!(e.description, "evseId: expected integer, got string");
}

#[test]
fn integral_float_is_an_integer_only_in_draft_06() {
    // OCPP 1.6 schemas are draft-04: 1.0 is a number, not an integer.
    expect(
        V16,
        &call(
            "StatusNotification",
            r#"{"connectorId":1.0,"errorCode":"NoError","status":"Available"}"#,
        ),
        ErrorKind::TypeConstraintViolation,
        "TypeConstraintViolation",
        "id-1",
    );
    // 2.x schemas are draft-06: 1.0 is an integer.
    let frame = call(
        "StatusNotification",
        r#"{"timestamp":"2024-01-01T00:00:00Z","connectorStatus":"Available","evseId":1.0,"connectorId":1}"#,
    );
    assert!(codec(V201).decode(frame.as_bytes()).is_ok());
}

#[test]
fn enum_violation_is_property_constraint_violation() {
    let meter = r#"{"connectorId":1,"meterValue":[{"timestamp":"2024-01-01T00:00:00Z","sampledValue":[{"value":"1"},{"value":"2"},{"value":"3","measurand":"Foo"}]}]}"#;
    let e = expect(
        V16,
        &call("MeterValues", meter),
        ErrorKind::PropertyConstraintViolation,
        "PropertyConstraintViolation",
        "id-1",
    );
    assert_eq!(
        e.description,
        r#"meterValue[0].sampledValue[2].measurand: "Foo" is not one of the allowed values"#
    );
    expect(
        V201,
        &call(
            "BootNotification",
            r#"{"chargingStation":{"model":"M","vendorName":"V"},"reason":"Sunday"}"#,
        ),
        ErrorKind::PropertyConstraintViolation,
        "PropertyConstraintViolation",
        "id-1",
    );
}

#[test]
fn too_long_string_is_property_constraint_violation() {
    let long = "x".repeat(21);
    expect(
        V16,
        &call(
            "BootNotification",
            &format!(r#"{{"chargePointVendor":"{long}","chargePointModel":"M"}}"#),
        ),
        ErrorKind::PropertyConstraintViolation,
        "PropertyConstraintViolation",
        "id-1",
    );
    // maxLength counts characters: 20 multi-byte characters fit.
    let wide = "ü".repeat(20);
    let frame = call(
        "BootNotification",
        &format!(r#"{{"chargePointVendor":"{wide}","chargePointModel":"M"}}"#),
    );
    assert!(codec(V16).decode(frame.as_bytes()).is_ok());
    let long = "x".repeat(51);
    expect(
        V201,
        &call(
            "BootNotification",
            &format!(
                r#"{{"chargingStation":{{"model":"M","vendorName":"{long}"}},"reason":"PowerUp"}}"#
            ),
        ),
        ErrorKind::PropertyConstraintViolation,
        "PropertyConstraintViolation",
        "id-1",
    );
}

fn set_charging_profile_201(e_price_level: i64) -> String {
    format!(
        r#"{{"evseId":1,"chargingProfile":{{"id":1,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute","chargingSchedule":[{{"id":1,"chargingRateUnit":"A","startSchedule":"2024-01-01T00:00:00Z","chargingSchedulePeriod":[{{"startPeriod":0,"limit":16.0}}],"salesTariff":{{"id":1,"salesTariffEntry":[{{"relativeTimeInterval":{{"start":0}},"ePriceLevel":{e_price_level}}}]}}}}]}}}}"#
    )
}

#[test]
fn below_minimum_is_property_constraint_violation() {
    assert!(codec(V201)
        .decode(call("SetChargingProfile", &set_charging_profile_201(0)).as_bytes())
        .is_ok());
    let e = expect(
        V201,
        &call("SetChargingProfile", &set_charging_profile_201(-1)),
        ErrorKind::PropertyConstraintViolation,
        "PropertyConstraintViolation",
        "id-1",
    );
    assert!(e.description.starts_with("chargingProfile.chargingSchedule[0].salesTariff.salesTariffEntry[0].ePriceLevel: -1 is less than"), "{}", e.description);
}

fn set_charging_profile_16(limit: &str) -> String {
    format!(
        r#"{{"connectorId":1,"csChargingProfiles":{{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute","chargingSchedule":{{"chargingRateUnit":"A","chargingSchedulePeriod":[{{"startPeriod":0,"limit":{limit}}}]}}}}}}"#
    )
}

#[test]
fn multiple_of_uses_a_tolerance() {
    for ok in ["7.2", "16", "0.1", "0.3", "32.7", "1e1", "123456.7"] {
        let frame = call("SetChargingProfile", &set_charging_profile_16(ok));
        assert!(codec(V16).decode(frame.as_bytes()).is_ok(), "{ok}");
    }
    for bad in ["7.25", "0.05", "16.01"] {
        expect(
            V16,
            &call("SetChargingProfile", &set_charging_profile_16(bad)),
            ErrorKind::PropertyConstraintViolation,
            "PropertyConstraintViolation",
            "id-1",
        );
    }
}

#[test]
fn bad_date_time_is_property_constraint_violation_unless_formats_are_off() {
    let frame16 = call(
        "StatusNotification",
        r#"{"connectorId":1,"errorCode":"NoError","status":"Available","timestamp":"yesterday"}"#,
    );
    let frame2 = call(
        "StatusNotification",
        r#"{"timestamp":"2024-01-01 00:00:00","connectorStatus":"Available","evseId":1,"connectorId":1}"#,
    );
    expect_all(
        &frame16,
        &frame2,
        ErrorKind::PropertyConstraintViolation,
        "PropertyConstraintViolation",
        "PropertyConstraintViolation",
        "id-1",
    );
    let lax = CodecOptions {
        check_formats: false,
        ..CodecOptions::default()
    };
    assert!(Codec::new(V16, lax.clone())
        .unwrap()
        .decode(frame16.as_bytes())
        .is_ok());
    assert!(Codec::new(V201, lax)
        .unwrap()
        .decode(frame2.as_bytes())
        .is_ok());
}

#[test]
fn additional_property_is_format_violation() {
    let e = expect_all(
        &call(
            "BootNotification",
            r#"{"chargePointVendor":"V","chargePointModel":"M","colour":"red"}"#,
        ),
        &call(
            "BootNotification",
            r#"{"chargingStation":{"model":"M","vendorName":"V","colour":"red"},"reason":"PowerUp"}"#,
        ),
        ErrorKind::FormatViolation,
        "FormationViolation",
        "FormatViolation",
        "id-1",
    );
    assert_eq!(
        e.description,
        r#"chargingStation: property "colour" is not allowed here"#
    );
    // customData objects stay open in 2.x.
    let frame = call(
        "Heartbeat",
        r#"{"customData":{"vendorId":"x","anything":{"goes":[1,2]}}}"#,
    );
    assert!(codec(V201).decode(frame.as_bytes()).is_ok());
}

#[test]
fn description_is_cut_to_255_characters() {
    let key = "k".repeat(300);
    let frame = call("Heartbeat", &format!(r#"{{"{key}":1}}"#));
    let e = decode_err(V201, &frame);
    assert!(e.description.chars().count() <= 255);
    let e = decode_err(V201, &call(&"A".repeat(400), "{}"));
    assert_eq!(e.kind, ErrorKind::NotImplemented);
    assert!(e.description.chars().count() <= 255);
}

#[test]
fn invalid_call_result_is_reported_but_only_answered_on_21() {
    let frame = br#"[3,"r1",{"currentTime":"not a time"}]"#;
    for v in Version::ALL {
        let c = codec(v);
        let m = c.decode(frame).unwrap();
        assert!(matches!(m, Message::CallResult { action: None, .. }));
        let e = c.bind_result(m, "Heartbeat").unwrap_err();
        assert_eq!(e.kind, ErrorKind::PropertyConstraintViolation);
        assert_eq!(e.message_id, "r1");
        if v == V21 {
            assert!(e.should_reply);
            assert_eq!(
                e.error_frame(v).unwrap(),
                r#"[5,"r1","PropertyConstraintViolation","currentTime: \"not a time\" is not an RFC 3339 date-time",{}]"#
            );
        } else {
            assert!(!e.should_reply);
            assert_eq!(e.error_frame(v), None);
        }
    }
    let c = codec(V16);
    let m = c
        .decode(br#"[3,"r1",{"currentTime":"2024-01-01T00:00:00Z"}]"#)
        .unwrap();
    let m = c.bind_result(m, "Heartbeat").unwrap();
    assert!(matches!(
        m,
        Message::CallResult {
            action: Some("Heartbeat"),
            ..
        }
    ));
    // Missing required in a result: the 1.6 spelling.
    let m = c.decode(br#"[3,"r1",{}]"#).unwrap();
    assert_eq!(
        c.bind_result(m, "Heartbeat").unwrap_err().code(V16),
        "OccurenceConstraintViolation"
    );
    // A pending action the version does not define: reported, never answered.
    let m = c.decode(br#"[3,"r1",{}]"#).unwrap();
    let e = c.bind_result(m, "Nope").unwrap_err();
    assert_eq!((e.kind, e.should_reply), (ErrorKind::NotImplemented, false));
}

#[test]
fn call_errors_keep_the_peer_code_in_either_spelling() {
    for v in Version::ALL {
        for code in [
            "FormationViolation",
            "FormatViolation",
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
            "SomethingNew",
        ] {
            let frame = format!(r#"[4,"e1","{code}","why",{{"x":1}}]"#);
            match codec(v).decode(frame.as_bytes()).unwrap() {
                Message::CallError {
                    code: got,
                    description,
                    ..
                } => {
                    assert_eq!(got, code);
                    assert_eq!(description, "why");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn codes_are_spelled_per_version() {
    for kind in ErrorKind::ALL {
        for v in Version::ALL {
            assert_eq!(
                ErrorKind::from_code(kind.code(v))
                    .map(|k| k == kind || (kind == ErrorKind::RpcFrameworkError && v == V16)),
                Some(true)
            );
        }
    }
    assert_eq!(ErrorKind::FormatViolation.code(V16), "FormationViolation");
    assert_eq!(ErrorKind::FormatViolation.code(V201), "FormatViolation");
    assert_eq!(
        ErrorKind::OccurrenceConstraintViolation.code(V16),
        "OccurenceConstraintViolation"
    );
    assert_eq!(
        ErrorKind::OccurrenceConstraintViolation.code(V21),
        "OccurrenceConstraintViolation"
    );
    assert_eq!(ErrorKind::RpcFrameworkError.code(V16), "FormationViolation");
}

#[test]
fn encode_error_writes_the_version_spelling() {
    let c16 = codec(V16);
    let c2 = codec(V201);
    for code in ["FormatViolation", "FormationViolation"] {
        assert_eq!(
            c16.encode_error("a", code, "d", None).unwrap(),
            r#"[4,"a","FormationViolation","d",{}]"#
        );
        assert_eq!(
            c2.encode_error("a", code, "d", None).unwrap(),
            r#"[4,"a","FormatViolation","d",{}]"#
        );
    }
    for code in [
        "OccurenceConstraintViolation",
        "OccurrenceConstraintViolation",
    ] {
        assert!(c16
            .encode_error("a", code, "", None)
            .unwrap()
            .contains("\"OccurenceConstraintViolation\""));
        assert!(c2
            .encode_error("a", code, "", None)
            .unwrap()
            .contains("\"OccurrenceConstraintViolation\""));
    }
    assert!(c16
        .encode_error("-1", "RpcFrameworkError", "", None)
        .unwrap()
        .contains("\"FormationViolation\""));
    assert!(matches!(
        c16.encode_error("a", "MessageTypeNotSupported", "", None),
        Err(EncodeError::Argument(_))
    ));
    assert!(c2
        .encode_error("a", "MessageTypeNotSupported", "", None)
        .is_ok());
    assert!(matches!(
        c2.encode_error("a", "Bogus", "", None),
        Err(EncodeError::Argument(_))
    ));
    let long = "d".repeat(300);
    let frame = c2.encode_error("a", "GenericError", &long, None).unwrap();
    assert!(
        frame.contains(&format!("\"{}\"", "d".repeat(255))) && !frame.contains(&"d".repeat(256))
    );
    let details = JsonValue::parse(br#"{"k":[1,"\n"]}"#, false).unwrap();
    assert_eq!(
        c2.encode_error("a", "InternalError", "", Some(&details))
            .unwrap(),
        r#"[4,"a","InternalError","",{"k":[1,"\n"]}]"#
    );
}

fn payload(s: &str) -> JsonValue<'_> {
    JsonValue::parse(s.as_bytes(), false).unwrap()
}

#[test]
fn encode_validates_and_checks_ids() {
    let c = codec(V16);
    assert_eq!(
        c.encode_call("id", "BootNotification", &payload(BOOT16))
            .unwrap(),
        r#"[2,"id","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#
    );
    let e = c
        .encode_call("id", "BootNotification", &payload("{}"))
        .unwrap_err();
    assert!(
        matches!(e, EncodeError::Invalid(ref e) if e.kind == ErrorKind::OccurrenceConstraintViolation)
    );
    let e = c.encode_call("id", "Nope", &payload("{}")).unwrap_err();
    assert!(matches!(e, EncodeError::Invalid(ref e) if e.kind == ErrorKind::NotImplemented));
    assert!(matches!(
        c.encode_call("", "Heartbeat", &payload("{}")),
        Err(EncodeError::Argument(_))
    ));
    assert!(matches!(
        c.encode_call(&"x".repeat(37), "Heartbeat", &payload("{}")),
        Err(EncodeError::Argument(_))
    ));
    assert_eq!(
        c.encode_result(
            "r",
            "Heartbeat",
            &payload(r#"{"currentTime":"2024-01-01T00:00:00Z"}"#)
        )
        .unwrap(),
        r#"[3,"r",{"currentTime":"2024-01-01T00:00:00Z"}]"#
    );
    assert!(c.encode_result("r", "Heartbeat", &payload("{}")).is_err());
    assert!(matches!(
        c.encode_send("s", "Heartbeat", &payload("{}")),
        Err(EncodeError::Argument(_))
    ));
    let send = codec(V21)
        .encode_send("s", "NotifyPeriodicEventStream", &payload(r#"{"id":1,"pending":0,"basetime":"2024-01-01T00:00:00Z","data":[{"t":0.5,"v":"1"}]}"#))
        .unwrap();
    assert!(send.starts_with(r#"[6,"s","NotifyPeriodicEventStream",{"#));
    assert!(c
        .encode_call("id", "Heartbeat", &JsonValue::Float(f64::NAN))
        .is_err());
}

#[test]
fn config_errors() {
    let zero = CodecOptions {
        max_depth: 0,
        ..CodecOptions::default()
    };
    assert!(Codec::new(V16, zero).is_err());
    let zero = CodecOptions {
        max_frame_bytes: 0,
        ..CodecOptions::default()
    };
    assert!(Codec::new(V16, zero).is_err());
    let huge = CodecOptions {
        max_depth: 1000,
        ..CodecOptions::default()
    };
    assert!(Codec::new(V16, huge).is_err());
    assert!(codec(V16).actions().contains(&"BootNotification"));
    assert!(!codec(V16).actions().iter().any(|a| a.ends_with("Response")));
    assert!(codec(V21).actions().contains(&"NotifyPeriodicEventStream"));
}
