//! Tokens and accounts against a real node: every forged or stale credential of issue 5
//! is refused with 401 / UNAUTHENTICATED (or 403 / PERMISSION_DENIED) and changes nothing;
//! refresh rotation, reuse detection, lockout, dynamic tokens and account management.

use gridledger_node::auth::org_token_key;
use gridledger_node::config::read_signing_key;
use gridledger_proto::v1 as pb;
use gridledger_proto::v1::auth_service_client::AuthServiceClient;
use gridledger_services::auth::token::{Claims, TYP_ACCESS, TYP_DYNAMIC, TokenSigner};
use gridledger_tests::{DevNode, Port, with_bearer};
use serde_json::{Value, json};
use tonic::Code;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs claims with the node's real token key for `key_org`: only the claims are wrong.
fn forge(n: &DevNode, key_org: &str, c: &Claims) -> String {
    let secret = read_signing_key(&n.dir.join("token.key")).unwrap();
    TokenSigner::new(key_org, &org_token_key(&secret, key_org))
        .sign(c)
        .unwrap()
}

fn claims(user: &str, org: &str, roles: &[&str], scope: &str) -> Claims {
    Claims {
        iss: "gridledger.example/metering/node-1".into(),
        sub: user.into(),
        aud: "gridledger.example/metering".into(),
        exp: now() + 600,
        iat: now(),
        jti: format!("forged-{user}-{}", now()),
        org: org.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scope: scope.into(),
        typ: TYP_ACCESS.into(),
        single_use: false,
    }
}

/// Reads a meter's readings (2026) as the holder of `token`. Readings are class II, so
/// an access token is first exchanged for a dynamic token scoped to the meter, and a
/// refusal of that exchange is the answer (a revoked or forged access token fails
/// there, with the layer's message); a dynamic token reads directly.
async fn readings(n: &DevNode, token: &str, meter: &str) -> (u16, String) {
    use base64::Engine as _;
    let is_dynamic = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|c| c["typ"] == TYP_DYNAMIC);
    let token = if is_dynamic {
        token.to_string()
    } else {
        let (s, b) = n
            .http(
                Port::Public,
                "POST",
                "/v1/auth/dynamic-tokens",
                Some(token),
                Some(&json!({"scope": [format!("readings:{meter}")]}).to_string()),
            )
            .await;
        if s != 200 {
            return (s, b);
        }
        json(&b)["token"].as_str().unwrap().to_string()
    };
    read_directly(n, &token, meter).await
}

/// Reads with `token` as it is, whatever it is.
async fn read_directly(n: &DevNode, token: &str, meter: &str) -> (u16, String) {
    n.http(
        Port::Public,
        "GET",
        &format!("/v1/meters/{meter}/readings?from=2026-01-01&to=2026-12-31"),
        Some(token),
        None,
    )
    .await
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[tokio::test]
async fn forged_and_stale_tokens_are_unauthenticated() {
    let n = DevNode::start(8);
    let meter = n.account("resident-1").meters[0].clone();
    // The control: a well-formed token signed with the right key works, so each refusal
    // below is caused by the one thing changed.
    let good = forge(
        &n,
        "grid-north",
        &claims(
            "resident-1",
            "grid-north",
            &["resident"],
            &format!("meter:{meter}"),
        ),
    );
    assert_eq!(readings(&n, &good, &meter).await.0, 200);

    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    // Bad signature: flip a character of the signature.
    let mut bad = good.clone().into_bytes();
    let i = bad.len() - 5;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    cases.push((
        "bad signature",
        String::from_utf8(bad).unwrap(),
        "signature",
    ));
    // alg: none, no signature.
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let payload = good.split('.').nth(1).unwrap().to_string();
    cases.push((
        "alg none",
        format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        "malformed",
    ));
    // HS256 with the public key as the secret (algorithm confusion).
    cases.push((
        "alg HS256",
        format!(
            "{}.{payload}.c2lnbmF0dXJl",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#)
        ),
        "malformed",
    ));
    let mut c = claims(
        "resident-1",
        "grid-north",
        &["resident"],
        &format!("meter:{meter}"),
    );
    c.aud = "another.example/ledger".into();
    cases.push(("audience", forge(&n, "grid-north", &c), "audience"));
    let mut c = claims(
        "resident-1",
        "grid-north",
        &["resident"],
        &format!("meter:{meter}"),
    );
    c.iat = now() - 1000;
    c.exp = now() - 100;
    cases.push(("expired", forge(&n, "grid-north", &c), "expired"));
    let mut c = claims(
        "resident-1",
        "grid-north",
        &["resident"],
        &format!("meter:{meter}"),
    );
    c.exp = c.iat + 16 * 60;
    cases.push((
        "lifetime over 15 min",
        forge(&n, "grid-north", &c),
        "lifetime",
    ));
    // A grid-north key speaking for a grid-south user (cross-org).
    let c = claims(
        "resident-3",
        "grid-south",
        &["resident"],
        "meter:GS-M000001",
    );
    cases.push(("cross-org key", forge(&n, "grid-north", &c), "org"));
    // A supplier's key minting a regulator.
    let c = claims("x", "sup-alpha", &["regulator"], "");
    cases.push(("role outside org kind", forge(&n, "sup-alpha", &c), "role"));
    cases.push(("garbage", "not.a.jwt".into(), "malformed"));
    cases.push(("oversized", "a".repeat(9000), "malformed"));

    let before = n
        .http(Port::Public, "GET", "/v1/status", None, None)
        .await
        .1;
    for (what, token, needle) in &cases {
        let (s, b) = readings(&n, token, &meter).await;
        assert_eq!(s, 401, "{what}: {b}");
        assert!(
            b.to_lowercase().contains(needle),
            "{what}: message {b:?} should mention {needle}"
        );
        // gRPC says the same.
        let mut auth = AuthServiceClient::new(n.channel(Port::Public).await);
        let e = auth
            .logout(with_bearer(pb::LogoutRequest::default(), token))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{what}: {e:?}");
        assert!(
            !e.message().contains(token.as_str()) || token.len() < 10,
            "{what}: token echoed"
        );
    }
    assert_eq!(
        n.http(Port::Public, "GET", "/v1/status", None, None)
            .await
            .1,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn logout_revokes_and_refresh_tokens_rotate_and_detect_reuse() {
    let n = DevNode::start(8);
    let a = n.account("gn-operator");
    let mut auth = AuthServiceClient::new(n.channel(Port::Public).await);
    let pair = auth
        .login(pb::LoginRequest {
            username: a.username.clone(),
            password: a.password.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pair.token_type, "Bearer");
    assert!(pair.expires_in <= 900);
    assert_eq!(
        n.http(
            Port::Public,
            "GET",
            "/v1/accounts",
            Some(&pair.access_token),
            None
        )
        .await
        .0,
        403
    );
    let own = readings(&n, &pair.access_token, "GN-M000000").await;
    assert_eq!(own.0, 200, "{}", own.1);

    // Rotation: the new refresh token works once; the old one is now a reuse.
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": pair.refresh_token}).to_string()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let second = json(&b);
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": pair.refresh_token}).to_string()),
        )
        .await;
    assert_eq!(s, 401, "{b}");
    assert!(b.contains("already used"), "{b}");
    // Reuse revoked the whole family, so the stolen-or-not newer token is dead too.
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": second["refresh_token"]}).to_string()),
        )
        .await;
    assert_eq!(s, 401, "{b}");

    // Logout revokes the access token's jti (here and after a restart).
    let t = n.login("gn-operator").await;
    assert_eq!(readings(&n, &t, "GN-M000000").await.0, 200);
    let (s, b) = n
        .http(Port::Public, "POST", "/v1/auth/logout", Some(&t), None)
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = readings(&n, &t, "GN-M000000").await;
    assert_eq!(s, 401);
    assert!(b.contains("revoked"), "{b}");
    let mut n = n;
    n.stop();
    n.spawn();
    assert_eq!(
        readings(&n, &t, "GN-M000000").await.0,
        401,
        "revocation survives a restart"
    );
    let (s, _) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(r#"{"refresh_token":"00"}"#),
        )
        .await;
    assert_eq!(s, 401);
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(r#"{"token":"x"}"#),
        )
        .await;
    assert_eq!(s, 400, "unknown field: {b}");
}

#[tokio::test]
async fn wrong_passwords_lock_the_username_and_unknown_users_look_the_same() {
    let n = DevNode::start(8);
    let a = n.account("px-market");
    let login = |u: String, p: String| {
        let n = &n;
        async move {
            n.http(
                Port::Public,
                "POST",
                "/v1/auth/login",
                None,
                Some(&json!({"username": u, "password": p}).to_string()),
            )
            .await
        }
    };
    let (s1, unknown) = login("no-such-user".into(), "whatever-password".into()).await;
    let (s2, wrong) = login(a.username.clone(), "wrong-password!".into()).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(
        json(&unknown)["message"],
        json(&wrong)["message"],
        "no user enumeration"
    );
    for _ in 0..4 {
        assert_eq!(
            login(a.username.clone(), "wrong-password!".into()).await.0,
            401
        );
    }
    // Five failures: locked, even with the right password.
    let (s, b) = login(a.username.clone(), a.password.clone()).await;
    assert_eq!(s, 429, "{b}");
    assert!(b.contains("try again"), "{b}");
    // Other users are unaffected.
    assert_eq!(
        login("regulator".into(), n.account("regulator").password)
            .await
            .0,
        200
    );
    // gRPC: RESOURCE_EXHAUSTED for the locked name.
    let mut auth = AuthServiceClient::new(n.channel(Port::Public).await);
    let e = auth
        .login(pb::LoginRequest {
            username: a.username,
            password: a.password,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    // Malformed bodies are 400, not 500.
    let (s, _) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/login",
            None,
            Some("{not json"),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn dynamic_tokens_are_scoped_short_lived_and_single_use() {
    let n = DevNode::start(8);
    let resident = n.login("resident-1").await;
    let meters = n.account("resident-1").meters;
    let (own, second) = (&meters[0], &meters[1]);
    let grant = |body: Value| {
        let n = &n;
        let resident = resident.clone();
        async move {
            n.http(
                Port::Public,
                "POST",
                "/v1/auth/dynamic-tokens",
                Some(&resident),
                Some(&body.to_string()),
            )
            .await
        }
    };
    let (s, b) = grant(
        json!({"scope": [format!("readings:{own}:2000-01-01:2099-12-31")], "ttl_seconds": 60}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let reusable = json(&b)["token"].as_str().unwrap().to_string();
    assert_eq!(readings(&n, &reusable, own).await.0, 200);
    assert_eq!(readings(&n, &reusable, own).await.0, 200);
    // Outside its scope: another meter (even one the granting resident may read).
    assert_eq!(readings(&n, &reusable, second).await.0, 403);
    // A dynamic token carries no roles: no "my meters", no accounts, no grants.
    assert_eq!(
        n.http(Port::Public, "GET", "/v1/me/meters", Some(&reusable), None)
            .await
            .0,
        403
    );
    assert_eq!(
        n.http(Port::Public, "GET", "/v1/accounts", Some(&reusable), None)
            .await
            .0,
        403
    );
    let (s, _) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/dynamic-tokens",
            Some(&reusable),
            Some(&json!({"scope": [format!("readings:{own}")]}).to_string()),
        )
        .await;
    assert_eq!(s, 403);
    // Single use: a request the matrix refuses does not spend it; the first read does.
    let (s, b) = grant(json!({"scope": [format!("readings:{own}")], "single_use": true})).await;
    assert_eq!(s, 200, "{b}");
    let once = json(&b)["token"].as_str().unwrap().to_string();
    assert_eq!(
        n.http(Port::Public, "GET", "/v1/me/meters", Some(&once), None)
            .await
            .0,
        403
    );
    assert_eq!(readings(&n, &once, own).await.0, 200);
    assert_eq!(readings(&n, &once, own).await.0, 401);
    let (s, b) = grant(json!({"scope": [format!("readings:{own}")], "single_use": true})).await;
    assert_eq!(s, 200, "{b}");
    let once = json(&b)["token"].as_str().unwrap().to_string();
    let (s, b) = readings(&n, &once, own).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = readings(&n, &once, own).await;
    assert_eq!(s, 401, "{b}");
    assert!(b.contains("already used"), "{b}");
    // A day range outside the grant.
    let (s, b) = grant(json!({"scope": [format!("readings:{own}:2020-01-01:2020-01-31")]})).await;
    assert_eq!(s, 200, "{b}");
    let ranged = json(&b)["token"].as_str().unwrap().to_string();
    assert_eq!(readings(&n, &ranged, own).await.0, 403);
    let (s, _) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/meters/{own}/readings?from=2020-01-02&to=2020-01-30"),
            Some(&ranged),
            None,
        )
        .await;
    assert_eq!(s, 200);
    // Bad requests.
    for (body, want) in [
        (
            json!({"scope": [format!("readings:{own}")], "ttl_seconds": 301}),
            400,
        ),
        (json!({"scope": []}), 400),
        (json!({"scope": ["meter:GN-M000000"]}), 400),
        (json!({"scope": ["readings:GS-M000001"]}), 403),
        (json!({"scope": ["readings:NO-SUCH"]}), 403),
        // One item that would split into two grants inside the token.
        (
            json!({"scope": [format!("readings:{own} readings:GS-M000001")]}),
            400,
        ),
    ] {
        let (s, b) = grant(body.clone()).await;
        assert_eq!(s, want, "{body}: {b}");
    }
    // Expired: a dynamic token whose exp has passed (signed with the real key).
    let mut c = claims("resident-1", "grid-north", &[], &format!("readings:{own}"));
    c.typ = TYP_DYNAMIC.into();
    c.iat = now() - 400;
    c.exp = now() - 100;
    let (s, b) = readings(&n, &forge(&n, "grid-north", &c), own).await;
    assert_eq!(s, 401, "{b}");
    assert!(b.contains("expired"), "{b}");
    // A grid-north token key cannot open a grid-south meter, whatever scope it signs.
    let mut c = claims("gn-operator", "grid-north", &[], "readings:GS-M000001");
    c.typ = TYP_DYNAMIC.into();
    c.exp = c.iat + 300;
    let (s, b) = readings(&n, &forge(&n, "grid-north", &c), "GS-M000001").await;
    assert_eq!(s, 403, "{b}");
    // Nor can a forged resident binding.
    let c = claims(
        "resident-1",
        "grid-north",
        &["resident"],
        "meter:GS-M000001",
    );
    let (s, b) = readings(&n, &forge(&n, "grid-north", &c), "GS-M000001").await;
    assert_eq!(s, 403, "{b}");
    // Longer than 5 minutes is refused even when signed correctly.
    let mut c = claims("resident-1", "grid-north", &[], &format!("readings:{own}"));
    c.typ = TYP_DYNAMIC.into();
    c.exp = c.iat + 301;
    assert_eq!(readings(&n, &forge(&n, "grid-north", &c), own).await.0, 401);
}

#[tokio::test]
async fn admins_manage_their_own_orgs_accounts_only() {
    let n = DevNode::start(8);
    let admin = n.login("gn-admin").await;
    let post = |path: &str, token: &str, body: Value| {
        let (n, path, token) = (&n, path.to_string(), token.to_string());
        async move {
            n.http(
                Port::Public,
                "POST",
                &path,
                Some(&token),
                Some(&body.to_string()),
            )
            .await
        }
    };
    // The account follows the ledger: the grid company binds the customer first.
    let o = n.cli(&[
        "bind",
        "GN-M000006",
        "--account",
        "new-resident",
        "--point",
        "MP-GN-M000006",
        "--from",
        "2026-11-01",
    ]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let (s, b) = post(
        "/v1/accounts",
        &admin,
        json!({"username": "new-resident", "password": "a long enough password", "roles": ["resident"], "meters": ["GN-M000006"]}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // Bad accounts: nothing is created.
    for (body, want) in [
        (
            json!({"username": "new-resident", "password": "a long enough password", "roles": ["resident"]}),
            409,
        ),
        (
            json!({"username": "x2", "password": "short", "roles": ["operator"]}),
            400,
        ),
        (
            json!({"username": "x3", "password": "a long enough password", "roles": ["regulator"]}),
            400,
        ),
        (
            json!({"username": "x4", "password": "a long enough password", "roles": ["resident"], "meters": ["GS-M000001"]}),
            422,
        ),
        (
            json!({"username": "x5", "password": "a long enough password", "roles": ["operator"], "meters": ["GN-M000006"]}),
            400,
        ),
        (
            json!({"username": "Bad Name", "password": "a long enough password", "roles": ["operator"]}),
            400,
        ),
        (
            json!({"username": "x6", "password": "a long enough password", "roles": ["wizard"]}),
            400,
        ),
    ] {
        let (s, b) = post("/v1/accounts", &admin, body.clone()).await;
        assert_eq!(s, want, "{body}: {b}");
    }
    let (s, b) = n
        .http(Port::Public, "GET", "/v1/accounts", Some(&admin), None)
        .await;
    assert_eq!(s, 200);
    let names: Vec<String> = json(&b)["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"new-resident".to_string()) && names.contains(&"resident-1".to_string())
    );
    assert!(!names.iter().any(|u| u.starts_with('x')), "{names:?}");
    assert!(
        !names.contains(&"resident-3".to_string()),
        "another org's accounts are not listed"
    );
    assert!(!b.contains("argon2"), "no password hashes in responses");

    // The new resident logs in and sees only their meter.
    let login = |u: &str, p: &str| {
        let body = json!({"username": u, "password": p}).to_string();
        let n = &n;
        async move {
            n.http(Port::Public, "POST", "/v1/auth/login", None, Some(&body))
                .await
        }
    };
    let (s, b) = login("new-resident", "a long enough password").await;
    assert_eq!(s, 200, "{b}");
    let tokens = json(&b);
    let t = tokens["access_token"].as_str().unwrap();
    assert_eq!(readings(&n, t, "GN-M000006").await.0, 200);
    assert_eq!(readings(&n, t, "GN-M000000").await.0, 403);

    // Another org's admin cannot touch it.
    let other = n.login("reg-admin").await;
    let (s, b) = n
        .http(
            Port::Public,
            "PATCH",
            "/v1/accounts/new-resident",
            Some(&other),
            Some(r#"{"disabled":true}"#),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    // Its own admin disables it: login is refused and the refresh token is dead.
    let (s, b) = n
        .http(
            Port::Public,
            "PATCH",
            "/v1/accounts/new-resident",
            Some(&admin),
            Some(r#"{"disabled":true}"#),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(login("new-resident", "a long enough password").await.0, 403);
    let (s, _) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/refresh",
            None,
            Some(&json!({"refresh_token": tokens["refresh_token"]}).to_string()),
        )
        .await;
    assert!(s == 401 || s == 403, "{s}");
    // Re-enabled with a reset password: the old password no longer works.
    let (s, b) = n
        .http(
            Port::Public,
            "PATCH",
            "/v1/accounts/new-resident",
            Some(&admin),
            Some(r#"{"disabled":false,"new_password":"another long password"}"#),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(login("new-resident", "a long enough password").await.0, 401);
    assert_eq!(login("new-resident", "another long password").await.0, 200);
}

/// A token key revoked on the ledger (by the org's admin, through the CLI) invalidates
/// every token it signed at once, and the node stops issuing new ones for that org.
#[tokio::test]
async fn revoking_an_orgs_token_key_on_the_ledger_ends_its_tokens() {
    let n = DevNode::start(8);
    let t = n.login("resident-1").await;
    assert_eq!(readings(&n, &t, "GN-M000000").await.0, 200);

    let o = std::process::Command::new(gridledger_tests::bin("gridledger-node"))
        .args(["token-keys", "--config"])
        .arg(n.dir.join("node.toml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let out = gridledger_tests::stdout(&o);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("grid-north "))
        .expect("grid-north token key")
        .to_string();

    // The dev CLI key is an operator, not an admin: refused, nothing changes.
    let o = n.cli(&["keys", "revoke", "--public-key", &key, "--reason", "test"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        gridledger_tests::stderr(&o).contains("PermissionDenied")
            || gridledger_tests::stderr(&o).contains("admin"),
        "{}",
        gridledger_tests::stderr(&o)
    );
    assert_eq!(readings(&n, &t, "GN-M000000").await.0, 200);

    // grid-north's admin key (the demo's) revokes it.
    let admin_key = n.dir.join("gn-admin.key");
    gridledger_node::config::write_secret(
        &admin_key,
        &hex::encode(gridledger_node::demo::org_key("grid-north").to_bytes()),
    )
    .unwrap();
    let profile = std::fs::read_to_string(n.profile()).unwrap();
    let line = profile
        .lines()
        .find(|l| l.starts_with("signing_key"))
        .unwrap();
    let admin_profile = n.dir.join("admin-profile.toml");
    std::fs::write(
        &admin_profile,
        profile.replace(line, &format!("signing_key = {:?}", admin_key)),
    )
    .unwrap();
    let o = std::process::Command::new(gridledger_tests::bin("gridledger"))
        .args([
            "keys",
            "revoke",
            "--public-key",
            &key,
            "--reason",
            "node decommissioned",
        ])
        .env("GRIDLEDGER_PROFILE", &admin_profile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));

    let (s, b) = readings(&n, &t, "GN-M000000").await;
    assert_eq!(s, 401, "{b}");
    assert!(b.contains("revoked key"), "{b}");
    let a = n.account("gn-operator");
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/login",
            None,
            Some(&json!({"username": a.username, "password": a.password}).to_string()),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("not registered and active"), "{b}");
    // Other orgs' users are unaffected.
    let m = n.login("px-market").await;
    assert_eq!(readings(&n, &m, "GN-M000000").await.0, 200);
}
