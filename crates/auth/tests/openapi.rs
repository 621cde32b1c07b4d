//! The checked-in OpenAPI document (`crates/auth/openapi.json`) matches the handlers.
//! Regenerate with `UPDATE_OPENAPI=1 cargo test -p conclave-as --test openapi`.

#[test]
fn checked_in_openapi_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let generated = conclave_as::http::openapi::document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).expect("write openapi.json");
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "crates/auth/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p conclave-as --test openapi"
    );
    for route in [
        "/v1/register",
        "/v1/users/{user}/devices",
        "/v1/kt/audit",
        "/v1/revocations",
    ] {
        assert!(generated.contains(route), "{route} missing");
    }
}
