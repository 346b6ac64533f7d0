//! Every embedded schema compiles with the validator's keyword subset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[test]
fn every_schema_compiles() {
    match evgw_ocpp::all_schemas_compile() {
        Ok(n) => assert_eq!(n, 78 + 128 + 181, "schema count"),
        Err(errors) => panic!("{} schemas failed:\n{:#?}", errors.len(), errors),
    }
}
