//! The OpenAPI document is generated from the handlers and checked in as
//! `crates/delivery/openapi.json`; this test fails when the checked-in copy is stale.
//! Regenerate with `UPDATE_OPENAPI=1 cargo test -p conclave-ds --test openapi`.

#[test]
fn checked_in_openapi_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = conclave_ds::http::ops::openapi_json() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "crates/delivery/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p conclave-ds --test openapi"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).expect("json");
    for path in [
        "/v1/mailboxes",
        "/v1/pools/{pool}/claim",
        "/v1/groups/{group}/commits",
        "/v1/ws",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    // Anonymous creations share a node-wide budget: past it, 429 with Retry-After.
    for path in ["/v1/mailboxes", "/v1/groups"] {
        let limited = &doc["paths"][path]["post"]["responses"]["429"];
        assert!(limited.is_object(), "POST {path} lacks its 429");
        assert!(
            limited["headers"]["Retry-After"].is_object(),
            "POST {path}: 429 without Retry-After"
        );
    }
}
