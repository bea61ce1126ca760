//! The gateway's OpenAPI 3.1 document, served at `/openapi.json`. Written by hand next
//! to the routes ([`crate::gateway::router`]); a test checks that every route is in it
//! and the integration tests validate it with an independent OpenAPI validator.

use serde_json::{Value, json};

/// Every (method, path) the gateway serves, in OpenAPI path syntax.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/openapi.json"),
    ("get", "/v1/status"),
    ("get", "/v1/checkpoint"),
    ("post", "/v1/witness/cosignatures"),
    ("get", "/v1/records/{index}/receipt"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/auth/jwks"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/v1/auth/dynamic-tokens"),
    ("get", "/v1/accounts"),
    ("post", "/v1/accounts"),
    ("patch", "/v1/accounts/{username}"),
    ("get", "/v1/me/meters"),
    ("post", "/v1/me/disputes"),
    ("get", "/v1/supplier/demand-plans"),
    ("get", "/v1/supplier/test-batches"),
    ("get", "/v1/supplier/models"),
    ("post", "/v1/supplier/transactions"),
    ("get", "/v1/sync"),
    ("get", "/v1/meters/{asset_no}"),
    ("get", "/v1/meters/{asset_no}/readings"),
    ("get", "/v1/meters/{asset_no}/binding"),
    ("get", "/v1/meters/{asset_no}/traceability"),
    ("get", "/v1/institutions/{id}"),
    ("get", "/v1/settlement/check"),
    ("get", "/v1/plans"),
    ("post", "/v1/documents"),
    ("get", "/v1/documents/{sha256}"),
    ("get", "/v1/documents/{sha256}/content"),
];

fn q(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": description, "schema": schema})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string", "minLength": 1, "maxLength": 128}})
}

fn day(name: &str, required: bool, description: &str) -> Value {
    q(
        name,
        required,
        description,
        json!({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
    )
}

fn receipt_param() -> Value {
    q(
        "receipt",
        false,
        "Attach each record's receipt (C2SP tlog-proof) as the last column.",
        json!({"type": "boolean", "default": false}),
    )
}

fn channel_param() -> Value {
    q(
        "channel",
        false,
        "Channel name (default: the system channel).",
        json!({"type": "string"}),
    )
}

fn errors(codes: &[&str]) -> serde_json::Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            (
                c.to_string(),
                json!({"description": match *c {
                    "400" => "Bad input; the message names the problem.",
                    "401" => "No or invalid credentials.",
                    "403" => "The caller may not do this.",
                    "404" => "No such record.",
                    "409" => "Conflicts with the ledger's state.",
                    "413" => "Body too large.",
                    "429" => "Rate limited.",
                    _ => "Error.",
                }, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            )
        })
        .collect()
}

// One operation object: a row of the document, so the arguments are its columns.
#[allow(clippy::too_many_arguments)]
fn op(
    summary: &str,
    description: &str,
    tags: &[&str],
    params: Vec<Value>,
    body: Option<Value>,
    ok: Value,
    errs: &[&str],
    public: bool,
) -> Value {
    let mut responses = errors(errs);
    responses.insert("200".into(), ok);
    let mut o = json!({
        "summary": summary,
        "description": description,
        "tags": tags,
        "parameters": params,
        "responses": responses,
    });
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    if public {
        // Callable without credentials (an empty requirement).
        o["security"] = json!([{}, {"bearer": []}]);
    }
    o
}

fn json_ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn text_ok(description: &str) -> Value {
    json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}})
}

fn view_ok(description: &str) -> Value {
    json_ok(description, json!({"$ref": "#/components/schemas/View"}))
}

/// The document.
pub fn document() -> Value {
    let obj = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let token_pair = json!({"type": "object", "properties": {
        "access_token": {"type": "string"}, "refresh_token": {"type": "string"},
        "expires_in": {"type": "integer"}, "token_type": {"type": "string", "const": "Bearer"}}});
    let account = json!({"type": "object", "properties": {
        "username": {"type": "string"}, "org": {"type": "string"}, "roles": strings,
        "meters": strings, "disabled": {"type": "boolean"}}});
    let class_i = "Class I records: anyone, with or without credentials.";
    let class_ii = "Class II: only a dynamic token (POST /v1/auth/dynamic-tokens) naming the meter and covering the period reads; the on-ledger policy grants one to the meter's bound resident, its owning grid company and market operators whose org belongs to the readings' collection. Each reading row carries `salt` and `payload` (hex), which the reader hashes and compares with the commitment in the proven leaf; a purged reading shows only `purged_by`.";
    let sha_param = json!({"name": "sha256", "in": "path", "required": true, "description": "The document's SHA-256, 64 lower-case hex digits.",
                           "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}});
    let mut upload_responses = errors(&["400", "401", "403", "409", "413"]);
    upload_responses.insert(
        "201".into(),
        json_ok(
            "The anchor, committed",
            json!({"$ref": "#/components/schemas/ImageJson"}),
        ),
    );
    let upload = json!({
        "summary": "Upload a document (class III)",
        "description": "The body is the document's bytes, streamed; the header `x-gridledger-anchor` carries the base64 of a signed AnchorDocument transaction (SHA-256, MD5, size, media type, file name, subject). The node refuses at once an anchor over its size limit (413), stops reading as soon as the bytes run past the declared size, keeps the bytes only if size, SHA-256 and MD5 all match the anchor (else 400, nothing stored), then commits the anchor (its contract rules apply; 409 if the document is anchored already).",
        "tags": ["documents"],
        "parameters": [{"name": "x-gridledger-anchor", "in": "header", "required": true,
                        "description": "base64 of the encoded SignedTx of an AnchorDocument", "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": upload_responses,
    });
    let mut dispute_responses = errors(&["400", "401", "403"]);
    dispute_responses.insert(
        "201".into(),
        json_ok(
            "The dispute, recorded",
            obj(
                json!({
        "dispute_id": {"type": "string"}, "asset_no": {"type": "string"},
        "account": {"type": "string"}, "leaf_index": {"type": "integer"}}),
                &["dispute_id", "asset_no", "account", "leaf_index"],
            ),
        ),
    );
    let dispute = json!({
        "summary": "Dispute one of my meters",
        "description": "A resident doubts one of their own meters. The node records the dispute on the ledger (rule `dispute`), signed with the resident's org's token key and naming the account; the grid company has the meter tested, and the returned-meter certificate that answers the dispute then appears on the meter. A meter not bound to the caller is 403, like one that does not exist.",
        "tags": ["data"],
        "requestBody": {"required": true, "content": {"application/json": {"schema": obj(json!({
            "asset_no": {"type": "string"}, "reason": {"type": "string", "minLength": 1, "maxLength": 1024}}),
            &["asset_no", "reason"])}}},
        "responses": dispute_responses,
    });
    let supply_class = "Class II: only a dynamic token with scope `supply:<the caller's org>` (POST /v1/auth/dynamic-tokens; granted to the org's systems and its admin, operator and supplier users, for grid companies and suppliers). Rows carry `contents` (the decoded payload) and `salt` and `payload` (hex) for the reader to check against the proven leaf's commitment.";
    let mut tx_responses = errors(&["400", "401", "403", "409", "422"]);
    tx_responses.insert(
        "201".into(),
        json_ok(
            "Committed",
            obj(
                json!({"type": {"type": "string"}, "leaf_index": {"type": "integer"},
                       "block_height": {"type": "integer"}, "tree_size": {"type": "integer"},
                       "leaf_hash": {"type": "string"}}),
                &[
                    "type",
                    "leaf_index",
                    "block_height",
                    "tree_size",
                    "leaf_hash",
                ],
            ),
        ),
    );
    let supplier_tx = json!({
        "summary": "Publish a supplier-collaboration transaction",
        "description": "A signed RegisterModel, PublishDemandPlan, AcknowledgeDemand or PublishTestBatch (base64 of the encoded SignedTx) and, for the last three (class II), the salt (hex, 32 bytes) and payload (base64 of the encoded DemandPlanBody, AckBody or TestBatchResults) its commitment covers. Answered once committed; the contract rules 4.4/* apply (their refusals name the rule).",
        "tags": ["supplier"],
        "requestBody": {"required": true, "content": {"application/json": {"schema": obj(json!({
            "signed_tx": {"type": "string"}, "salt": {"type": "string"}, "payload": {"type": "string"}}),
            &["signed_tx"])}}},
        "responses": tx_responses,
    });
    let mut sync_responses = errors(&["400", "401", "403", "422"]);
    sync_responses.insert(
        "200".into(),
        json!({"description": "Server-Sent Events: `id` is the event's cursor, `event` its type (demand_plan, demand_ack, test_batch, model, instrument, certificate, or error), `data` the event as JSON (`cursor`, `type`, `leaf_index`, `record`, and `salt`, `payload`, `receipt` when present).",
               "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
    );
    let sync = json!({
        "summary": "The caller's org's sync stream",
        "description": format!("Every event the caller's org may see, in log order, from `cursor` (or the `Last-Event-ID` header, which wins), then new ones as they commit; a standard SSE client resumes by itself. A cursor that is not one, or of another ledger, is 400; one past this node's log is 400 (OUT_OF_RANGE); one whose log position differs (a reset ledger) is 422. {supply_class}"),
        "tags": ["supplier"],
        "parameters": [q("cursor", false, "resume after this cursor", json!({"type": "string"})),
                       q("receipts", false, "attach each event's receipt", json!({"type": "boolean"})),
                       q("max", false, "stop after this many events", json!({"type": "integer", "minimum": 0}))],
        "responses": sync_responses,
    });
    let paths = json!({
        "/v1/me/disputes": {"post": dispute},
        "/v1/supplier/demand-plans": {"get": op("Demand plans", &format!("The demand plans the caller's org published or is addressed to, with the acknowledgements it may see, in log order (table `demand_plans`). {supply_class}"), &["supplier"],
            vec![q("id", false, "only this plan", json!({"type": "string"})), receipt_param()], None, view_ok("view"), &["400", "401", "403"], false)},
        "/v1/supplier/test-batches": {"get": op("Factory test batches", &format!("The factory test batches the caller's org made or bought, in log order (table `test_batches`). {supply_class}"), &["supplier"],
            vec![q("id", false, "only this batch", json!({"type": "string"})), receipt_param()], None, view_ok("view"), &["400", "401", "403"], false)},
        "/v1/supplier/models": {"get": op("Models", "The instrument models suppliers registered (table `models`), of one supplier with `supplier`. Class I: anyone.", &["supplier"],
            vec![q("supplier", false, "only this supplier's", json!({"type": "string"})), receipt_param()], None, view_ok("view"), &["400"], true)},
        "/v1/supplier/transactions": {"post": supplier_tx},
        "/v1/sync": {"get": sync},
        "/v1/documents": {"post": upload},
        "/v1/documents/{sha256}": {"get": op("A document's anchor", "The anchor as ImageJson: both digests, size, media type, file name, subject, the anchoring leaf and a download link; with `receipt=true` the leaf's receipt. Any authenticated caller.", &["documents"],
            vec![sha_param.clone(), receipt_param()], None, json_ok("anchor", json!({"$ref": "#/components/schemas/ImageJson"})), &["400", "401", "404"], false)},
        "/v1/documents/{sha256}/content": {"get": op("A document's bytes", "The bytes with the anchored media type; `x-gridledger-sha256` and `x-gridledger-md5` repeat the anchor's digests. A client checks the bytes against the proven anchor (`gridledger document get` does). Any authenticated caller.", &["documents"],
            vec![sha_param], None, json!({"description": "the bytes", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}), &["400", "401", "404"], false)},
        "/healthz": {"get": op("Liveness", "Answers `ok` while the node serves.", &["chain"], vec![], None, text_ok("ok"), &[], true)},
        "/openapi.json": {"get": op("This document", "The gateway's OpenAPI 3.1 document.", &["meta"], vec![], None, json_ok("OpenAPI document", json!({"type": "object"})), &[], true)},
        "/v1/status": {"get": op("Ledger status", "Origin, node id, height, tree size, root and transaction counts by type.", &["chain"],
            vec![channel_param()], None, json_ok("status", json!({"type": "object", "properties": {
                "origin": {"type": "string"}, "node_id": {"type": "string"}, "height": {"type": "integer"},
                "tree_size": {"type": "integer"}, "root": {"type": "string"}, "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}})),
            &["400", "403", "404"], true)},
        "/v1/checkpoint": {"get": op("Latest checkpoint", "The C2SP signed note, with every node and witness signature the node holds.", &["chain"],
            vec![channel_param()], None, text_ok("signed checkpoint note"), &["400", "403", "404"], true)},
        "/v1/witness/cosignatures": {"post": {
            "summary": "Add a witness cosignature",
            "description": "A C2SP tlog-cosignature v1 note from a configured witness.",
            "tags": ["chain"],
            "security": [{}],
            "requestBody": {"required": true, "content": {"text/plain": {"schema": {"type": "string"}}}},
            "responses": {
                "200": json_ok("accepted lines", json!({"type": "object", "properties": {"accepted": {"type": "integer"}}})),
                "400": errors(&["400"])["400"], "401": errors(&["401"])["401"], "409": errors(&["409"])["409"]
            }
        }},
        "/v1/records/{index}/receipt": {"get": op("Receipt of a leaf", "The C2SP tlog-proof receipt of a leaf (the leaf in `extra`) against the served checkpoint. Member systems, regulators and auditors.", &["chain"],
            vec![json!({"name": "index", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}), channel_param()],
            None, text_ok("tlog-proof receipt"), &["400", "401", "403", "404"], false)},
        "/v1/auth/login": {"post": op("Log in", "Password login; returns an access and a refresh token.", &["auth"], vec![],
            Some(obj(json!({"username": {"type": "string"}, "password": {"type": "string"}}), &["username", "password"])),
            json_ok("tokens", token_pair.clone()), &["400", "401", "429"], true)},
        "/v1/auth/refresh": {"post": op("Refresh", "Rotates a refresh token (reuse revokes the family).", &["auth"], vec![],
            Some(obj(json!({"refresh_token": {"type": "string"}}), &["refresh_token"])),
            json_ok("tokens", token_pair), &["400", "401"], true)},
        "/v1/auth/logout": {"post": op("Log out", "Revokes the caller's access token and, if given, the refresh token.", &["auth"], vec![],
            Some(obj(json!({"refresh_token": {"type": "string"}}), &[])),
            json_ok("logged out", json!({"type": "object"})), &["400", "401"], false)},
        "/v1/auth/jwks": {"get": op("JWKS", "Public keys that verify this node's tokens.", &["auth"], vec![], None,
            json_ok("JWK set", json!({"type": "object", "properties": {"keys": {"type": "array"}}})), &[], true)},
        "/.well-known/jwks.json": {"get": op("JWKS (well-known)", "Same as /v1/auth/jwks.", &["auth"], vec![], None,
            json_ok("JWK set", json!({"type": "object", "properties": {"keys": {"type": "array"}}})), &[], true)},
        "/v1/auth/dynamic-tokens": {"post": op("Dynamic token", "A short-lived token scoped to records the caller may read (at most 5 minutes; optionally single-use).", &["auth"], vec![],
            Some(obj(json!({"scope": strings, "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 300}, "single_use": {"type": "boolean"}}), &["scope"])),
            json_ok("token", json!({"type": "object", "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}, "jti": {"type": "string"}, "token_type": {"type": "string"}}})),
            &["400", "401", "403"], false)},
        "/v1/accounts": {
            "get": op("List accounts", "Accounts of the caller's org (org admins).", &["accounts"], vec![], None,
                json_ok("accounts", json!({"type": "object", "properties": {"accounts": {"type": "array", "items": account.clone()}}})), &["401", "403"], false),
            "post": {
                "summary": "Create an account",
                "description": "An account of the caller's org (org admins), with roles the org kind allows.",
                "tags": ["accounts"],
                "requestBody": {"required": true, "content": {"application/json": {"schema":
                    obj(json!({"username": {"type": "string"}, "password": {"type": "string"}, "roles": strings, "meters": strings}), &["username", "password", "roles"])}}},
                "responses": {
                    "201": json_ok("created", account.clone()),
                    "400": errors(&["400"])["400"], "401": errors(&["401"])["401"],
                    "403": errors(&["403"])["403"], "409": errors(&["409"])["409"]
                }
            }
        },
        "/v1/accounts/{username}": {"patch": op("Update an account", "Disable, reset the password, change roles or meters.", &["accounts"],
            vec![path_param("username", "login name")],
            Some(obj(json!({"disabled": {"type": "boolean"}, "new_password": {"type": "string"}, "roles": strings, "meters": strings}), &[])),
            json_ok("updated", account), &["400", "401", "403", "404"], false)},
        "/v1/me/meters": {"get": op("My meters", "The meters bound to the calling resident, as a view with one table `meters`.", &["data"],
            vec![receipt_param()], None, view_ok("view"), &["400", "401", "403"], false)},
        "/v1/meters/{asset_no}": {"get": op("An instrument", &format!("The instrument (table `instrument`), its certificates (table `certificates`) and the current verification certificate (summary). {class_i}"), &["data"],
            vec![path_param("asset_no", "asset number"), receipt_param()], None, view_ok("view"), &["400", "404"], true)},
        "/v1/meters/{asset_no}/readings": {"get": op("Readings", &format!("Daily readings over at most 366 days (table `readings`, with the 96 interval values each way). {class_ii}"), &["data"],
            vec![path_param("asset_no", "asset number"), day("from", true, "first day"), day("to", true, "last day"), receipt_param()],
            None, view_ok("view"), &["400", "401", "403"], false)},
        "/v1/meters/{asset_no}/binding": {"get": op("Customer bindings", "The meter's customer bindings and installation points, oldest first (table `bindings`; summary `current` is the leaf of the current one). Class II: only a dynamic token reads: scope `binding:<asset>` (granted to the owning grid company's operators, admins and systems) shows every binding, `binding:<asset>:<account>` (what the bound resident may be granted, with their own user name) only the bindings naming that account; the token's org must own the meter and belong to each binding's collection. Rows carry `salt` and `payload` (hex, an encoded CustomerBinding) for the reader to check against the proven leaf's commitment; a purged binding shows only `purged_by`.", &["data"],
            vec![path_param("asset_no", "asset number"), receipt_param()],
            None, view_ok("view"), &["400", "401", "403"], false)},
        "/v1/meters/{asset_no}/traceability": {"get": op("Traceability chain", &format!("Every link from the equipment of the current verification certificate up to a national standard (table `chain`), evaluated on `date` (default: the certificate's test date); the summary says whether the chain is complete and names any broken link. {class_i}"), &["data"],
            vec![path_param("asset_no", "asset number"), day("date", false, "evaluate the chain on this day"), receipt_param()],
            None, view_ok("view"), &["400", "404"], true)},
        "/v1/institutions/{id}": {"get": op("Institution credit view", &format!("Authorisations, accreditations, personnel certificates, equipment with its calibration status today, and the newest certificates issued. {class_i}"), &["data"],
            vec![path_param("id", "institution org id"), receipt_param()], None, view_ok("view"), &["400", "404"], true)},
        "/v1/settlement/check": {"get": op("Settlement check", &format!("Readings of a meter over a period with the verification certificates overlapping it; the summary says whether valid certificates cover every day and lists uncovered ranges. {class_ii}"), &["data"],
            vec![q("meter", true, "asset number", json!({"type": "string"})), day("from", true, "first day"), day("to", true, "last day"), receipt_param()],
            None, view_ok("view"), &["400", "401", "403"], false)},
        "/v1/plans": {"get": op("Verification plans", &format!("Plans by due date with their status today: done, overdue, due (within 30 days) or open. {class_i}"), &["data"],
            vec![q("status", false, "only this status", json!({"type": "string", "enum": ["done", "overdue", "due", "open"]})),
                 q("subject", false, "only plans of this subject", json!({"type": "string"})), receipt_param()],
            None, view_ok("view"), &["400"], true)},
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gridledger HTTP/JSON gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP/JSON face of gridledger's gRPC services. Record routes answer views whose tables are TableJson (DESIGN.md §5): `type`, `property` (description, timestamp, origin, tree size, data class), `structure` (columns) and `cell` (rows). Every row ends with its `leaf_index` and, with `receipt=true`, its receipt, so a client can verify it against the log. Unknown query parameters are refused. See docs/API.md."
        },
        "tags": [
            {"name": "chain", "description": "Checkpoints, receipts and status."},
            {"name": "auth", "description": "Logins and tokens."},
            {"name": "accounts", "description": "An org's user accounts."},
            {"name": "data", "description": "Metering records (class I and II)."},
            {"name": "documents", "description": "Class III documents: anchors on the ledger, bytes in the object store."},
            {"name": "supplier", "description": "Supplier collaboration (class II) and the per-org sync stream."},
            {"name": "meta", "description": "This document."}
        ],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string", "description": "gRPC code name, e.g. INVALID_ARGUMENT"},
                    "message": {"type": "string"}}},
                "Column": {"type": "object", "required": ["field", "type", "unit"], "properties": {
                    "field": {"type": "string"}, "type": {"type": "string"}, "unit": {"type": "string"}}},
                "TableJson": {"type": "object", "required": ["type", "name", "property", "structure", "cell"], "properties": {
                    "type": {"const": "TableJson"},
                    "name": {"type": "string"},
                    "property": {"type": "object", "properties": {
                        "description": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
                        "origin": {"type": "string"}, "tree_size": {"type": "integer"},
                        "data_class": {"type": "string", "enum": ["I", "II", "III"]}, "rows": {"type": "integer"}}},
                    "structure": {"type": "array", "items": {"$ref": "#/components/schemas/Column"}},
                    "cell": {"type": "array", "items": {"type": "array"}}}},
                "ImageJson": {"type": "object", "required": ["type", "property", "sha256", "md5", "size", "media_type", "file_name", "subject", "leaf_index", "stored", "download"], "properties": {
                    "type": {"const": "ImageJson"},
                    "property": {"type": "object", "properties": {
                        "description": {"type": "string"}, "origin": {"type": "string"},
                        "tree_size": {"type": "integer"}, "data_class": {"const": "III"}}},
                    "sha256": {"type": "string"}, "md5": {"type": "string"}, "size": {"type": "integer"},
                    "media_type": {"type": "string"}, "file_name": {"type": "string"}, "subject": {"type": "string"},
                    "leaf_index": {"type": "integer"},
                    "stored": {"type": "boolean", "description": "whether this node's object store holds the bytes"},
                    "download": {"type": "string"},
                    "receipt": {"type": "string", "description": "C2SP tlog-proof of the anchor's leaf"}}},
                "View": {"type": "object", "required": ["title", "summary", "tables"], "properties": {
                    "title": {"type": "string"},
                    "summary": {"type": "object"},
                    "tables": {"type": "array", "items": {"$ref": "#/components/schemas/TableJson"}}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_once_and_nothing_else() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
