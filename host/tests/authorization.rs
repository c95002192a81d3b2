//! Who may call what, for every route the host serves.
//!
//! The list of routes is `taskhost::api::routes::ROUTES`, the same list the routers are built
//! from (a route missing from it stops the host at start-up). This test walks it against the
//! real binary and checks each route's access rule:
//!
//! - user routes: no token, a malformed token and a forged token get 401; another user gets
//!   404 (403 for someone else's audit trail by user id) and none of the owner's data, and
//!   cannot change the owner's task; the owner gets an answer;
//! - admin routes: no token 401, a user's JWT or a wrong admin token 403, the admin token
//!   gets through;
//! - Dapr callbacks (on a host in Dapr mode with `APP_API_TOKEN`): without the app token or
//!   with a wrong one 401, with it through;
//! - development sign-in: open on a `--dev` host, 404 on a host with its own JWT secret;
//! - public routes: open;
//! - every method a route does not list: 405.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{HostOptions, TestEnv, User};
use taskhost::api::routes::{Access, ROUTES, Route};

const ADMIN_TOKEN: &str = "authorization-test-admin-token";
const APP_TOKEN: &str = "authorization-test-app-token";
const SECRET_TITLE: &str = "alice's secret plan";
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What the owner has, that nobody else may see or change.
struct Fixture {
    alice: User,
    bob: User,
    task: String,
}

/// The route's path with its parameters filled in. An unknown parameter fails the test: a
/// new route needs its values here.
fn concrete(route: &Route, f: &Fixture) -> String {
    let mut path = route.path.to_string();
    let fill: &[(&str, &str)] = match route.access {
        Access::DaprApp => &[("{topic}", "task-events"), ("{name}", "reminder-auth-test")],
        Access::Admin => &[("{name}", "audit"), ("{id}", "999999")],
        _ => &[
            ("{id}", &f.task),
            ("{task_id}", &f.task),
            ("{user_id}", &f.alice.id),
            ("{*path}", "app.js"),
        ],
    };
    for (param, value) in fill {
        path = path.replace(param, value);
    }
    assert!(
        !path.contains('{'),
        "the authorization test has no value for a parameter of {}: add it to `concrete`",
        route.path
    );
    path
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("an HTTP method")
}

/// A body for the methods that take one (valid enough to get past parsing, if the request got
/// that far).
fn body(m: &str) -> Option<Value> {
    matches!(m, "POST" | "PATCH" | "PUT").then(|| json!({"title": "intruder"}))
}

async fn status_and_text(api: &support::Api, m: &str, path: &str) -> (u16, String) {
    let reply = api
        .try_send(method(m), path, body(m).as_ref())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (reply.status.as_u16(), reply.text)
}

fn ws_url(host: &support::Host, token: Option<&str>) -> String {
    match token {
        Some(t) => host.ws_url(&format!("/ws?token={t}")),
        None => host.ws_url("/ws"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_its_access_rule() {
    let mut env = TestEnv::new();
    let host = env
        .start_with(&HostOptions::new().env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN))
        .await;
    let alice = User::new().await;
    let bob = User::new().await;
    let task = host
        .api(&alice)
        .create_task(&json!({"title": SECRET_TITLE, "due_date": "2031-05-01T09:00:00Z"}))
        .await;
    let f = Fixture {
        alice,
        bob,
        task: task.id.clone(),
    };
    // The owner's audit trail exists before anyone probes it.
    support::wait_until("alice's audit trail", support::EFFECT_TIMEOUT, async || {
        if host.api(&f.alice).task_audit(&f.task).await.is_empty() {
            Err("empty".to_string())
        } else {
            Ok(())
        }
    })
    .await;

    let anonymous = host.api_with_authorization(None);
    let malformed = host.api_with_authorization(Some("Bearer not-a-jwt"));
    let forged =
        host.api_with_authorization(Some(&format!("Bearer {}", f.bob.forge_token_for(&f.alice))));
    let as_bob = host.api(&f.bob);
    let as_alice = host.api(&f.alice);
    let user_jwt_as_admin = host.api(&f.alice);
    let wrong_admin = host.api_with_authorization(Some("Bearer wrong-admin-token-0123456789"));
    let admin = host.api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")));

    let mut checked = 0;
    for route in ROUTES {
        let path = concrete(route, &f);
        for m in METHODS.iter().filter(|m| !route.methods.contains(m)) {
            if route.access == Access::DaprApp {
                continue; // checked on the Dapr-mode host below
            }
            let (status, _) = status_and_text(&anonymous, m, &path).await;
            assert_eq!(status, 405, "{m} {path} is not a route: 405");
        }
        for m in route.methods {
            let what = format!("{m} {path} ({:?})", route.access);
            match route.access {
                Access::User if route.path == "/ws" => {
                    assert_eq!(
                        support::ws_handshake_status(&ws_url(&host, None)).await,
                        401,
                        "{what} without a token"
                    );
                    assert_eq!(
                        support::ws_handshake_status(&ws_url(&host, Some("not-a-jwt"))).await,
                        401,
                        "{what} with a malformed token"
                    );
                    assert_eq!(
                        support::ws_handshake_status(&ws_url(
                            &host,
                            Some(&f.bob.forge_token_for(&f.alice))
                        ))
                        .await,
                        401,
                        "{what} with a forged token"
                    );
                    assert_eq!(
                        support::ws_handshake_status(&ws_url(&host, Some(&f.alice.token))).await,
                        101,
                        "{what} with the user's token"
                    );
                }
                Access::User => {
                    for (who, api) in [
                        ("no token", &anonymous),
                        ("a malformed token", &malformed),
                        ("a forged token", &forged),
                    ] {
                        let (status, text) = status_and_text(api, m, &path).await;
                        assert_eq!(status, 401, "{what} with {who}: {text}");
                        assert!(
                            !text.contains(SECRET_TITLE),
                            "{what} with {who} leaked: {text}"
                        );
                    }
                    let (status, text) = status_and_text(&as_bob, m, &path).await;
                    assert!(
                        !text.contains(SECRET_TITLE) && !text.contains(&f.alice.id),
                        "{what} as another user leaked alice's data: {text}"
                    );
                    let expected: &[u16] = if path.contains(&f.task) {
                        &[404]
                    } else if path.contains(&f.alice.id) {
                        &[403]
                    } else {
                        // Collections: the caller's own (empty, or what bob just created).
                        &[200, 201]
                    };
                    assert!(
                        expected.contains(&status),
                        "{what} as another user: expected {expected:?}, got {status}: {text}"
                    );
                    if *m == "GET" {
                        let (status, text) = status_and_text(&as_alice, m, &path).await;
                        assert_eq!(status, 200, "{what} as the owner: {text}");
                        if path.contains(&f.task) {
                            assert!(text.contains(&f.task), "{what} as the owner: {text}");
                        }
                    }
                }
                Access::Admin => {
                    let (status, text) = status_and_text(&anonymous, m, &path).await;
                    assert_eq!(status, 401, "{what} without a token: {text}");
                    for (who, api) in [
                        ("a user's JWT", &user_jwt_as_admin),
                        ("a wrong admin token", &wrong_admin),
                    ] {
                        let (status, text) = status_and_text(api, m, &path).await;
                        assert_eq!(status, 403, "{what} with {who}: {text}");
                    }
                    let (status, text) = status_and_text(&admin, m, &path).await;
                    assert!(
                        ![401, 403, 405].contains(&status)
                            && !text.contains("admin routes are disabled"),
                        "{what} with the admin token must get through, got {status}: {text}"
                    );
                }
                Access::Public => {
                    let (status, text) = status_and_text(&anonymous, m, &path).await;
                    assert_eq!(status, 200, "{what} is public: {text}");
                }
                Access::Dev => {
                    let (status, text) = status_and_text(&anonymous, m, &path).await;
                    assert!(
                        (200..300).contains(&status) || status == 422,
                        "{what} is open on a --dev host: {status} {text}"
                    );
                }
                Access::DaprApp => continue,
            }
            checked += 1;
        }
    }

    // Nothing another user sent changed the owner's task.
    let after = as_alice.task(&f.task).await;
    assert_eq!(after.title, SECRET_TITLE);
    assert!(!after.is_completed, "bob could not complete alice's task");
    assert!(
        checked >= 20,
        "every non-Dapr route was checked ({checked} checks)"
    );
    eprintln!("authorization: {checked} route × method checks on the embedded host");

    dapr_and_dev_routes_on_a_production_host(&mut env).await;
}

/// Dapr callbacks need the app token; development sign-in does not exist on a host with its
/// own JWT secret.
async fn dapr_and_dev_routes_on_a_production_host(env: &mut TestEnv) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let host = env
        .start_with(
            &HostOptions::new()
                .env("TASKHOST_DELIVERY", "dapr")
                .env("DAPR_HTTP_PORT", closed.to_string())
                .env("APP_API_TOKEN", APP_TOKEN)
                .env(
                    "TASKHOST_JWT_SECRET",
                    "authorization-test-secret-of-at-least-32-bytes",
                )
                .env_remove("DAPR_HTTP_ENDPOINT")
                .env_remove("DAPR_API_TOKEN")
                .live_only(),
        )
        .await;
    let alice = User::new().await;
    let f = Fixture {
        bob: alice.clone(),
        alice,
        task: "none".into(),
    };
    let anonymous = host.api_with_authorization(None);
    let wrong = host.as_daprd("wrong-app-token");
    let sidecar = host.as_daprd(APP_TOKEN);
    for route in ROUTES {
        let path = concrete(route, &f);
        match route.access {
            Access::DaprApp => {
                for m in METHODS.iter().filter(|m| !route.methods.contains(m)) {
                    let (status, _) = status_and_text(&sidecar, m, &path).await;
                    assert_eq!(status, 405, "{m} {path} is not a route: 405");
                }
                for m in route.methods {
                    for (who, api) in [("no app token", &anonymous), ("a wrong app token", &wrong)]
                    {
                        let (status, text) = status_and_text(api, m, &path).await;
                        assert_eq!(status, 401, "{m} {path} with {who}: {text}");
                    }
                    let (status, text) = status_and_text(&sidecar, m, &path).await;
                    assert!(
                        ![401, 403, 404, 405].contains(&status),
                        "{m} {path} with the app token must get through, got {status}: {text}"
                    );
                }
            }
            Access::Dev => {
                for m in route.methods {
                    let (status, text) = status_and_text(&anonymous, m, &path).await;
                    assert_eq!(
                        status, 404,
                        "{m} {path} on a host with its own secret: {text}"
                    );
                }
            }
            Access::User if route.path != "/ws" => {
                // A token from the development secret means nothing to this host.
                for m in route.methods {
                    let (status, text) = status_and_text(&host.api(&f.alice), m, &path).await;
                    assert_eq!(status, 401, "{m} {path} with a dev-secret token: {text}");
                }
            }
            Access::Admin => {
                // No admin token configured: the routes do not exist.
                for m in route.methods {
                    let (status, text) = status_and_text(&host.api(&f.alice), m, &path).await;
                    assert_eq!(
                        status, 404,
                        "{m} {path} without TASKHOST_ADMIN_TOKEN: {text}"
                    );
                }
            }
            _ => {}
        }
    }
}
