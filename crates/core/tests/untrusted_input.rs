//! Every parser of core that reads input from outside (pipeline authors, webhook senders,
//! holders of approval links, API callers), on arbitrary input: it answers (a value or an
//! error), it never panics, and it answers quickly. Property tests over arbitrary bytes and
//! strings, and over structurally plausible JSON (the members each parser reads, holding
//! arbitrary values), a bounded number of cases each.

mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use pipewright_core::approvals::{
    sign_link, verify_link, LinkClaims, LinkError, LinkKey, LinkKeys, LinkPurpose,
};
use pipewright_core::conditions::cron_matches;
use pipewright_core::control_plane::{handle, ServiceContext, Services, KNOWN_OPERATIONS};
use pipewright_core::triggers::glob::{glob_match, wildcard_match, Glob, MAX_EXPANSIONS};
use pipewright_core::triggers::webhooks::{
    identify, parse_event, sign, verify_signature, Delivery, GitProvider, Headers, SignatureError,
    WebhookEvent,
};
use pipewright_core::triggers::GitChange;
use pipewright_core::{parse_pipeline, references, resolve, validate};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::World;

/// The longest any one call may take. Generous (debug build, a busy machine): it is there to
/// catch a hang or an exponential blow-up, not to measure speed.
const SLOW: Duration = Duration::from_secs(5);

/// Run `f`, failing the case when it takes longer than [`SLOW`].
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    prop_assert!(took < SLOW, "{what} took {took:?}");
    Ok(out)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// Strings that parsers look at twice: git refs, all-zero shas, names of the sample pipeline,
/// and arbitrary text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "\\PC{0,24}",
        1 => ".{0,8}",
        1 => prop_oneof![
            Just(String::new()),
            Just(" ".to_string()),
            Just("refs/heads/main".to_string()),
            Just("refs/tags/v1.0".to_string()),
            Just("refs/pull/1/head".to_string()),
            Just("refs/heads/".to_string()),
            Just("0000000000000000000000000000000000000000".to_string()),
            Just("0".to_string()),
            Just("branch".to_string()),
            Just("tag".to_string()),
            Just("owner/repo".to_string()),
        ],
        1 => "(refs/(heads|tags)/)?[a-z/*{},.-]{0,12}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A member the parser reads: usually a plausible value, sometimes any JSON, sometimes absent.
fn member(plausible: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        10 => plausible.prop_map(Some),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ]
}

fn string_member() -> impl Strategy<Value = Option<Value>> {
    member(text().prop_map(Value::String))
}

/// A member that is usually a git ref (`refs/heads/...`, `refs/tags/...`).
fn ref_member() -> impl Strategy<Value = Option<Value>> {
    member(
        prop_oneof![3 => "refs/(heads|tags)/[a-z0-9/*{}.-]{1,12}", 1 => text()]
            .prop_map(Value::String),
    )
}

/// A member that is usually a repository's full name.
fn name_member() -> impl Strategy<Value = Option<Value>> {
    member(prop_oneof![3 => "[a-z]{1,6}/[a-z]{1,6}", 1 => text()].prop_map(Value::String))
}

/// A member that is usually a commit id (sometimes all zeros: a deleted ref).
fn sha_member() -> impl Strategy<Value = Option<Value>> {
    member(
        prop_oneof![3 => "[0-9a-f]{40}", 1 => Just("0".repeat(40)), 1 => text()]
            .prop_map(Value::String),
    )
}

/// An object of the members that are present.
fn object(members: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect::<Map<_, _>>(),
    )
}

fn paths() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop_oneof![4 => text().prop_map(Value::String), 1 => json_leaf()],
        0..5,
    )
    .prop_map(Value::Array)
}

fn commit() -> impl Strategy<Value = Value> {
    (
        string_member(),
        string_member(),
        member(paths()),
        member(paths()),
        member(paths()),
    )
        .prop_map(|(id, message, added, modified, removed)| {
            object(vec![
                ("id", id),
                ("message", message),
                ("added", added),
                ("modified", modified),
                ("removed", removed),
            ])
        })
}

fn commits() -> impl Strategy<Value = Value> {
    // A few commits of any shape, or many (around GitHub's 20-commit limit) of a plausible one.
    let plausible = (text(), paths(), paths(), paths()).prop_map(|(id, added, modified, removed)| {
        json!({"id": id, "added": added, "modified": modified, "removed": removed})
    });
    prop_oneof![
        3 => prop::collection::vec(commit(), 0..4),
        1 => prop::collection::vec(plausible, 18..23),
    ]
    .prop_map(Value::Array)
}

fn github_payload() -> impl Strategy<Value = Value> {
    let push = (
        ref_member(),
        sha_member(),
        sha_member(),
        member(any::<bool>().prop_map(Value::Bool)),
        member(commits()),
        member(string_member().prop_map(|m| object(vec![("message", m)]))),
    );
    let rest = (
        member(name_member().prop_map(|n| object(vec![("full_name", n)]))),
        member(
            prop_oneof![
                Just("opened"),
                Just("reopened"),
                Just("synchronize"),
                Just("closed"),
                Just("labeled"),
            ]
            .prop_map(Value::from),
        ),
        member(
            (
                member(any::<u64>().prop_map(Value::from)),
                member(name_member().prop_map(|r| object(vec![("ref", r)]))),
                member(
                    (name_member(), sha_member())
                        .prop_map(|(r, sha)| object(vec![("ref", r), ("sha", sha)])),
                ),
                string_member(),
            )
                .prop_map(|(number, base, head, title)| {
                    object(vec![
                        ("number", number),
                        ("base", base),
                        ("head", head),
                        ("title", title),
                    ])
                }),
        ),
    );
    (push, rest).prop_map(
        |((r, before, after, deleted, commits, head_commit), (repository, action, pr))| {
            object(vec![
                ("ref", r),
                ("before", before),
                ("after", after),
                ("deleted", deleted),
                ("commits", commits),
                ("head_commit", head_commit),
                ("repository", repository),
                ("action", action),
                ("pull_request", pr),
            ])
        },
    )
}

fn gitlab_payload() -> impl Strategy<Value = Value> {
    let push = (
        ref_member(),
        sha_member(),
        sha_member(),
        sha_member(),
        member(commits()),
        member(any::<u64>().prop_map(Value::from)),
    );
    let rest = (
        member(name_member().prop_map(|n| object(vec![("path_with_namespace", n)]))),
        member(
            (
                member(
                    prop_oneof![
                        Just("open"),
                        Just("reopen"),
                        Just("update"),
                        Just("close"),
                        Just("merge"),
                        Just("approved"),
                    ]
                    .prop_map(Value::from),
                ),
                string_member(),
                member(any::<u64>().prop_map(Value::from)),
                name_member(),
                name_member(),
                member(sha_member().prop_map(|id| object(vec![("id", id)]))),
                string_member(),
            )
                .prop_map(|(action, oldrev, iid, source, target, last, title)| {
                    object(vec![
                        ("action", action),
                        ("oldrev", oldrev),
                        ("iid", iid),
                        ("source_branch", source),
                        ("target_branch", target),
                        ("last_commit", last),
                        ("title", title),
                    ])
                }),
        ),
    );
    (push, rest).prop_map(
        |((r, before, after, checkout, commits, total), (project, attributes))| {
            object(vec![
                ("ref", r),
                ("before", before),
                ("after", after),
                ("checkout_sha", checkout),
                ("commits", commits),
                ("total_commits_count", total),
                ("project", project),
                ("object_attributes", attributes),
            ])
        },
    )
}

fn bitbucket_side() -> impl Strategy<Value = Value> {
    (
        member(
            prop_oneof![
                Just("branch"),
                Just("named_branch"),
                Just("tag"),
                Just("bookmark")
            ]
            .prop_map(Value::from),
        ),
        name_member(),
        member(
            (sha_member(), string_member())
                .prop_map(|(hash, message)| object(vec![("hash", hash), ("message", message)])),
        ),
    )
        .prop_map(|(kind, name, target)| {
            object(vec![("type", kind), ("name", name), ("target", target)])
        })
}

fn bitbucket_payload() -> impl Strategy<Value = Value> {
    let change = (member(bitbucket_side()), member(bitbucket_side()))
        .prop_map(|(new, old)| object(vec![("new", new), ("old", old)]));
    let branch = || {
        member(
            (
                member(name_member().prop_map(|n| object(vec![("name", n)]))),
                member(sha_member().prop_map(|h| object(vec![("hash", h)]))),
            )
                .prop_map(|(branch, commit)| object(vec![("branch", branch), ("commit", commit)])),
        )
    };
    (
        member(name_member().prop_map(|n| object(vec![("full_name", n)]))),
        member(
            member(prop::collection::vec(change, 0..4).prop_map(Value::Array))
                .prop_map(|changes| object(vec![("changes", changes)])),
        ),
        member(
            (
                member(any::<u64>().prop_map(Value::from)),
                branch(),
                branch(),
                string_member(),
            )
                .prop_map(|(id, source, destination, title)| {
                    object(vec![
                        ("id", id),
                        ("source", source),
                        ("destination", destination),
                        ("title", title),
                    ])
                }),
        ),
    )
        .prop_map(|(repository, push, pr)| {
            object(vec![
                ("repository", repository),
                ("push", push),
                ("pullrequest", pr),
            ])
        })
}

fn provider() -> impl Strategy<Value = GitProvider> {
    prop_oneof![
        Just(GitProvider::GitHub),
        Just(GitProvider::GitLab),
        Just(GitProvider::Bitbucket)
    ]
}

/// A delivery of `provider` for one of the events it parses, or any event.
fn delivery(provider: GitProvider) -> impl Strategy<Value = Delivery> {
    let events: &'static [&'static str] = match provider {
        GitProvider::GitHub => &["push", "pull_request", "ping", "issues"],
        GitProvider::GitLab => &[
            "Push Hook",
            "Tag Push Hook",
            "Merge Request Hook",
            "Note Hook",
        ],
        GitProvider::Bitbucket => &[
            "repo:push",
            "pullrequest:created",
            "pullrequest:updated",
            "pullrequest:fulfilled",
            "pullrequest:rejected",
            "pullrequest:comment_created",
            "pullrequest:",
        ],
    };
    prop_oneof![
        9 => prop::sample::select(events).prop_map(str::to_string),
        1 => text(),
    ]
    .prop_map(move |event| Delivery {
        provider,
        event,
        delivery_id: "d-1".into(),
        body_sha256: String::new(),
    })
}

/// Headers named as the hosts name them (lower case, as Function URLs deliver them), with any
/// values, and a few other headers.
fn headers() -> impl Strategy<Value = Headers> {
    let names = prop::sample::select(vec![
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
        "x-gitlab-event",
        "x-gitlab-event-uuid",
        "x-gitlab-webhook-uuid",
        "x-gitlab-token",
        "x-event-key",
        "x-request-uuid",
        "x-hub-signature",
        "content-type",
    ]);
    let value = prop_oneof![
        3 => text(),
        1 => "sha256=[0-9a-fA-F]{0,66}",
        1 => "[ \t]*sha256=[0-9a-f]{64}[ \t]*",
    ];
    prop::collection::btree_map(
        prop_oneof![4 => names.prop_map(str::to_string), 1 => text()],
        value,
        0..6,
    )
}

/// Check what any answer of `parse_event` must be.
fn check_event(
    delivery: &Delivery,
    answer: &Result<WebhookEvent, String>,
) -> Result<(), TestCaseError> {
    match answer {
        Err(message) => prop_assert!(!message.is_empty()),
        Ok(WebhookEvent::Ping) => prop_assert_eq!(
            (delivery.provider, delivery.event.as_str()),
            (GitProvider::GitHub, "ping")
        ),
        Ok(WebhookEvent::Ignored(why)) => prop_assert!(!why.is_empty()),
        Ok(WebhookEvent::Changes(changes)) => {
            prop_assert!(!changes.is_empty());
            for change in changes {
                let repository = match change {
                    GitChange::Push(push) => &push.repository,
                    GitChange::PullRequest(pr) => &pr.repository,
                };
                prop_assert!(!repository.is_empty());
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. Webhooks
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn identify_reads_any_headers(headers in headers(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let delivery = identify(&headers, &body);
        let present = |name: &str| headers.get(name).is_some_and(|v| !v.trim().is_empty());
        match delivery {
            None => prop_assert!(!present("x-github-event") && !present("x-gitlab-event") && !present("x-event-key")),
            Some(d) => {
                prop_assert!(!d.event.is_empty());
                prop_assert!(!d.delivery_id.is_empty());
                let expected = if present("x-github-event") {
                    GitProvider::GitHub
                } else if present("x-gitlab-event") {
                    GitProvider::GitLab
                } else {
                    GitProvider::Bitbucket
                };
                prop_assert_eq!(d.provider, expected);
            }
        }
    }

    #[test]
    fn parse_event_refuses_arbitrary_bytes(provider in provider(), seed in any::<u64>(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        // Whatever the event, bytes that are not JSON are refused (or the event is ignored
        // before the body is read).
        let events = ["push", "pull_request", "ping", "Push Hook", "Tag Push Hook", "Merge Request Hook", "repo:push", "pullrequest:created"];
        let delivery = Delivery { provider, event: events[seed as usize % events.len()].into(), delivery_id: "d".into(), body_sha256: String::new() };
        let answer = timed("parse_event", || parse_event(&delivery, &body))?;
        check_event(&delivery, &answer)?;
    }

    #[test]
    fn parse_event_reads_any_json(provider in provider(), seed in any::<u64>(), body in json_value()) {
        let events = ["push", "pull_request", "Push Hook", "Merge Request Hook", "repo:push", "pullrequest:updated"];
        let delivery = Delivery { provider, event: events[seed as usize % events.len()].into(), delivery_id: "d".into(), body_sha256: String::new() };
        let answer = timed("parse_event", || parse_event(&delivery, body.to_string().as_bytes()))?;
        check_event(&delivery, &answer)?;
    }

    #[test]
    fn parse_event_reads_plausible_github_payloads(delivery in delivery(GitProvider::GitHub), payload in github_payload()) {
        let answer = timed("parse_event", || parse_event(&delivery, payload.to_string().as_bytes()))?;
        check_event(&delivery, &answer)?;
    }

    #[test]
    fn parse_event_reads_plausible_gitlab_payloads(delivery in delivery(GitProvider::GitLab), payload in gitlab_payload()) {
        let answer = timed("parse_event", || parse_event(&delivery, payload.to_string().as_bytes()))?;
        check_event(&delivery, &answer)?;
    }

    #[test]
    fn parse_event_reads_plausible_bitbucket_payloads(delivery in delivery(GitProvider::Bitbucket), payload in bitbucket_payload()) {
        let answer = timed("parse_event", || parse_event(&delivery, payload.to_string().as_bytes()))?;
        check_event(&delivery, &answer)?;
    }

    #[test]
    fn verify_signature_accepts_nothing_but_the_real_signature(
        provider in provider(),
        headers in headers(),
        body in prop::collection::vec(any::<u8>(), 0..64),
        secret in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        if verify_signature(provider, &headers, &body, &secret).is_ok() {
            prop_assert!(!secret.is_empty());
            let value = headers[&provider.signature_header().to_ascii_lowercase()].trim().to_string();
            match provider {
                GitProvider::GitLab => prop_assert_eq!(value.as_bytes(), &secret[..]),
                _ => prop_assert_eq!(value.to_ascii_lowercase(), sign(&secret, &body)),
            }
        }
    }

    #[test]
    fn a_signed_body_verifies_and_any_changed_byte_is_refused(
        body in prop::collection::vec(any::<u8>(), 0..128),
        secret in prop::collection::vec(any::<u8>(), 1..32),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
        replacement in any::<char>(),
    ) {
        for provider in [GitProvider::GitHub, GitProvider::Bitbucket] {
            let name = provider.signature_header().to_ascii_lowercase();
            let signature = sign(&secret, &body);
            let signed = Headers::from([(name.clone(), signature.clone())]);
            prop_assert_eq!(verify_signature(provider, &signed, &body, &secret), Ok(()));

            if !body.is_empty() {
                let mut changed = body.clone();
                changed[at.index(body.len())] ^= flip;
                prop_assert_eq!(
                    verify_signature(provider, &signed, &changed, &secret),
                    Err(SignatureError::Mismatch(provider.signature_header()))
                );
            }

            let mut other_secret = secret.clone();
            other_secret[at.index(secret.len())] ^= flip;
            prop_assert_eq!(
                verify_signature(provider, &signed, &body, &other_secret),
                Err(SignatureError::Mismatch(provider.signature_header()))
            );

            // One character of the signature replaced: refused, unless it only changed the
            // case of a hex digit (the same digest).
            let mut chars: Vec<char> = signature.chars().collect();
            let i = at.index(chars.len());
            if chars[i] != replacement {
                chars[i] = replacement;
                let forged: String = chars.into_iter().collect();
                let answer = verify_signature(provider, &Headers::from([(name.clone(), forged.clone())]), &body, &secret);
                if forged.to_ascii_lowercase() != signature {
                    prop_assert!(answer.is_err(), "{forged:?} verified");
                } else if i >= "sha256=".len() {
                    prop_assert_eq!(answer, Ok(()));
                }
            }
        }

        // GitLab: the token is the secret itself; any other token is refused.
        if let Ok(token) = String::from_utf8(secret.clone()) {
            let name = GitProvider::GitLab.signature_header().to_ascii_lowercase();
            let ok = verify_signature(GitProvider::GitLab, &Headers::from([(name.clone(), token.clone())]), &body, &secret);
            prop_assert_eq!(ok.is_ok(), !token.trim().is_empty() && token.trim() == token);
            let mut chars: Vec<char> = token.chars().collect();
            if !chars.is_empty() {
                let i = at.index(chars.len());
                if chars[i] != replacement {
                    chars[i] = replacement;
                    let forged: String = chars.into_iter().collect();
                    prop_assert!(verify_signature(GitProvider::GitLab, &Headers::from([(name, forged)]), &body, &secret).is_err());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Approval links
// ---------------------------------------------------------------------------

fn claims() -> impl Strategy<Value = LinkClaims> {
    (
        (text(), text(), text(), text(), text()),
        prop_oneof![
            Just(LinkPurpose::Approved),
            Just(LinkPurpose::Rejected),
            Just(LinkPurpose::Review)
        ],
        1_000i64..4_000_000_000,
        text(),
    )
        .prop_map(
            |((pipeline, stage, action, execution, token), purpose, expires, recipient)| {
                LinkClaims {
                    version: 1,
                    pipeline_name: pipeline,
                    stage_name: stage,
                    action_name: action,
                    pipeline_execution_id: execution,
                    token,
                    purpose,
                    expires,
                    recipient,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_link_refuses_arbitrary_strings(
        key in prop::collection::vec(any::<u8>(), 0..32),
        link in prop_oneof![
            "\\PC{0,200}",
            "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,50}",
            "[0-9a-f]{16}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,50}",
            json_value().prop_map(|v| format!("{}.{}", B64.encode(v.to_string()), B64.encode([0u8; 32]))),
        ],
        now in any::<f64>(),
    ) {
        prop_assert!(verify_link(&LinkKeys::single(key), &link, now).is_err());
    }

    #[test]
    fn a_signed_link_round_trips_and_any_changed_character_is_refused(
        key in prop::collection::vec(any::<u8>(), 1..32),
        claims in claims(),
        at in any::<prop::sample::Index>(),
        replacement in any::<char>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let keys = LinkKeys::single(key.clone());
        let link = sign_link(&keys.current, &claims);
        let now = (claims.expires - 1) as f64;
        prop_assert_eq!(verify_link(&keys, &link, now), Ok(claims.clone()));
        prop_assert!(matches!(verify_link(&keys, &link, claims.expires as f64), Err(LinkError::Expired(_))));

        let mut chars: Vec<char> = link.chars().collect();
        let i = at.index(chars.len());
        if chars[i] != replacement {
            chars[i] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(verify_link(&keys, &changed, now).is_err(), "{changed:?} verified");
        }
        let shortened = &link[..cut.index(link.len())];
        prop_assert!(verify_link(&keys, shortened, now).is_err());
        let longer = format!("{link}A");
        prop_assert!(verify_link(&keys, &longer, now).is_err());

        let mut other_key = key.clone();
        other_key[at.index(key.len())] ^= 1;
        prop_assert_eq!(
            verify_link(&LinkKeys::single(other_key), &link, now),
            Err(LinkError::UnknownKey)
        );
        // Under the real key's id, the other key's signature is forged.
        let forged = sign_link(&LinkKey::new(key.iter().map(|b| b ^ 0x55).collect::<Vec<u8>>()), &claims);
        let (_, rest) = forged.split_once('.').unwrap();
        prop_assert_eq!(
            verify_link(&keys, &format!("{}.{rest}", keys.current.id()), now),
            Err(LinkError::Forged)
        );
    }
}

// ---------------------------------------------------------------------------
// 3. Globs and wildcards
// ---------------------------------------------------------------------------

/// Patterns heavy in what the matcher treats specially.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        "[*?{}\\[\\]!^,/\\\\a-]{0,200}",
        "(\\*|\\*\\*|\\*\\*/|\\{|\\}|,|\\[|\\]|\\\\|a|/|\\?){0,60}",
        "(\\{a,b\\}|\\{,\\}|\\*|a){0,40}",
        "\\PC{0,100}",
    ]
}

fn subject() -> impl Strategy<Value = String> {
    prop_oneof!["[a/.b*{}\\[\\]\\\\]{0,200}", "a{0,200}", "\\PC{0,60}",]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn globs_and_wildcards_answer_quickly_on_any_pattern(pattern in pattern(), text in subject()) {
        timed("Glob::new + matches", || {
            if let Ok(glob) = Glob::new(&pattern) {
                assert_eq!(glob.as_str(), pattern);
                let matched = glob.matches(&text);
                assert_eq!(matched, glob_match(&pattern, &text));
            }
        })?;
        timed("wildcard_match", || wildcard_match(&pattern, &text))?;
        // A pattern without special characters matches only itself.
        if !pattern.contains(['*', '?', '[', '{', '\\']) {
            prop_assert_eq!(glob_match(&pattern, &text), pattern == text);
            prop_assert_eq!(wildcard_match(&pattern, &text), pattern == text);
            prop_assert!(glob_match(&pattern, &pattern));
        }
        prop_assert!(wildcard_match("*", &text));
    }
}

#[test]
fn the_worst_glob_patterns_answer_quickly() {
    // The most alternatives a pattern may have, each a chain of stars, on a long text that
    // almost matches; and one alternative more.
    let most = format!("{}{}b", "{a,*}".repeat(10), "*a".repeat(70));
    let text = "a".repeat(200);
    let start = Instant::now();
    let glob = Glob::new(&most).unwrap();
    assert!(!glob.matches(&text));
    assert!(start.elapsed() < SLOW, "took {:?}", start.elapsed());
    assert!(Glob::new(&format!("{{a,b}}{most}")).is_err());
    let _ = MAX_EXPANSIONS;
    // Unclosed braces and brackets, nested.
    for pattern in [
        "{".repeat(200),
        "[".repeat(200),
        "{[".repeat(100),
        "\\".repeat(200),
        "{a,".repeat(66),
    ] {
        let start = Instant::now();
        let _ = glob_match(&pattern, &text);
        assert!(
            start.elapsed() < SLOW,
            "{pattern}: took {:?}",
            start.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------
// 4. Variables
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_string_resolves_or_names_its_unresolved_reference(
        s in prop_oneof![
            "(#\\{|#|\\{|\\}|\\.|codepipeline|variables|Src|[a-z@_-]|é| ){0,40}",
            "\\PC{0,80}",
        ],
        known in any::<bool>(),
    ) {
        let lookup = |ns: &str, key: &str| (known || ns == "variables").then(|| format!("<{ns}.{key}>"));
        let refs = references(&s);
        match resolve(&s, lookup) {
            Ok(out) => {
                if refs.is_empty() {
                    prop_assert_eq!(out, s.clone());
                }
            }
            Err(e) => prop_assert!(refs.contains(&e.reference)),
        }
        if !s.contains("#{") {
            prop_assert!(refs.is_empty());
            prop_assert_eq!(resolve(&s, |_, _| None), Ok(s.clone()));
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Cron
// ---------------------------------------------------------------------------

fn cron_token() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        Just("L".to_string()),
        Just("LW".to_string()),
        (0u32..80).prop_map(|n| n.to_string()),
        (1900u32..2300).prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        (0u32..40).prop_map(|n| format!("{n}W")),
        (0u32..10).prop_map(|n| format!("{n}L")),
        (0u32..10, 0u32..8).prop_map(|(a, b)| format!("{a}#{b}")),
        prop::sample::select(vec!["MON", "fri", "SUN", "JAN", "dec", "FOO", "MON-FRI"])
            .prop_map(str::to_string),
        "[0-9A-Z*?/,#-]{1,6}",
    ];
    let ranged = (
        atom.clone(),
        prop::option::of(atom.clone()),
        prop::option::of(0u32..100),
    )
        .prop_map(|(a, b, step)| {
            let mut s = a;
            if let Some(b) = b {
                s = format!("{s}-{b}");
            }
            if let Some(step) = step {
                s = format!("{s}/{step}");
            }
            s
        });
    prop::collection::vec(ranged, 1..3).prop_map(|parts| parts.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cron_matches_answers_any_string(cron in "\\PC{0,60}", now in any::<f64>()) {
        let _ = timed("cron_matches", || cron_matches(&cron, now))?;
    }

    #[test]
    fn cron_matches_answers_any_fields(
        fields in prop::collection::vec(cron_token(), 5..8),
        wrapped in any::<bool>(),
        now in prop_oneof![
            any::<f64>(),
            0.0..4_102_444_800.0f64,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-1.0),
            Just(f64::MAX),
        ],
    ) {
        let body = fields.join(" ");
        let cron = if wrapped { format!("cron({body})") } else { body };
        let answer = timed("cron_matches", || cron_matches(&cron, now))?;
        // Instants past chrono's range (about 262,000 years) are refused, not wrapped.
        if now.is_infinite() || now.abs() > 1e16 {
            prop_assert!(answer.is_err());
        }
        if let Err(message) = answer {
            prop_assert!(!message.is_empty());
        }
    }
}

#[test]
fn cron_matches_keeps_its_examples() {
    // Anchors that the generators above hit real expressions: 2024-01-01T00:00:00Z, a Monday.
    let monday = 1_704_067_200.0;
    assert_eq!(cron_matches("cron(0 0 ? * MON *)", monday), Ok(true));
    assert_eq!(cron_matches("0 0 0 ? * MON-FRI *", monday), Ok(true));
    assert!(cron_matches("cron(0 0 ? * MON *)", f64::INFINITY).is_err());
}

// ---------------------------------------------------------------------------
// 6. Pipeline declarations and the control plane
// ---------------------------------------------------------------------------

/// The sample declarations (bare, as JSON values): the seeds of mutated declarations.
fn seeds() -> Vec<Value> {
    support::sample_files()
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let declaration = parse_pipeline(&text).unwrap();
            serde_json::from_str(&pipewright_core::declaration::to_json_pretty(&declaration))
                .unwrap()
        })
        .collect()
}

/// Every place in `v` (as JSON pointers), `v` itself included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(members) => {
            for (k, item) in members {
                pointers(
                    item,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
    out.push(at);
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at a place with any JSON.
    Replace(prop::sample::Index, Value),
    /// Remove the member or item at a place.
    Remove(prop::sample::Index),
    /// Add a member to the object at a place (or the one holding it).
    Add(prop::sample::Index, String, Value),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(
        prop_oneof![
            3 => (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
            1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
            1 => (any::<prop::sample::Index>(), text(), json_value()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
        ],
        1..4,
    )
}

fn mutate(mut v: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let mut places = Vec::new();
        pointers(&v, String::new(), &mut places);
        match m {
            Mutation::Replace(i, new) => {
                let place = &places[i.index(places.len())];
                *v.pointer_mut(place).unwrap() = new.clone();
            }
            Mutation::Remove(i) => {
                let place = &places[i.index(places.len())];
                if let Some((parent, last)) = place.rsplit_once('/') {
                    match v.pointer_mut(parent).unwrap() {
                        Value::Object(members) => {
                            members.remove(&last.replace("~1", "/").replace("~0", "~"));
                        }
                        Value::Array(items) => {
                            items.remove(last.parse::<usize>().unwrap());
                        }
                        _ => unreachable!(),
                    }
                }
            }
            Mutation::Add(i, key, new) => {
                let place = &places[i.index(places.len())];
                let parent = place.rsplit_once('/').map_or("", |(p, _)| p);
                for at in [place.as_str(), parent] {
                    if let Some(Value::Object(members)) = v.pointer_mut(at) {
                        members.insert(key.clone(), new.clone());
                        break;
                    }
                }
            }
        }
    }
    v
}

/// A declaration after a few mutations of a sample.
fn mutated_declaration() -> impl Strategy<Value = Value> {
    (prop::sample::select(seeds()), mutations()).prop_map(|(seed, ms)| mutate(seed, &ms))
}

fn check_parse(text: &str) {
    if let Ok(declaration) = parse_pipeline(text) {
        if let Err(problems) = validate(&declaration) {
            assert!(!problems.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_pipeline_answers_any_text(text in prop_oneof![
        "\\PC{0,200}",
        "[{}\\[\\]:,\"a-z0-9 \n-]{0,120}",
        "(name|stages|actions|- |: |\n|  |&a |\\*a |!!|\\{|\\[|#|\"|'){0,60}",
    ]) {
        timed("parse_pipeline", || check_parse(&text))?;
    }

    #[test]
    fn parse_pipeline_answers_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        timed("parse_pipeline", || check_parse(&text))?;
    }

    #[test]
    fn parse_pipeline_answers_any_json(v in json_value()) {
        timed("parse_pipeline", || check_parse(&v.to_string()))?;
    }

    #[test]
    fn parse_pipeline_answers_mutated_declarations(v in mutated_declaration(), wrapped in any::<bool>()) {
        let v = if wrapped { json!({"pipeline": v}) } else { v };
        timed("parse_pipeline (JSON)", || check_parse(&v.to_string()))?;
        let yaml = serde_yaml::to_string(&v).unwrap();
        timed("parse_pipeline (YAML)", || check_parse(&yaml))?;
    }
}

#[test]
fn parse_pipeline_answers_deep_and_repetitive_documents() {
    // libyaml (behind serde_yaml) reads a document whole before serde_yaml's depth limit
    // applies: linear time, but slow in a debug build (about 40 µs a level here), hence 10,000.
    for text in [
        "[".repeat(10_000),
        "{a: ".repeat(10_000),
        "{\"a\":".repeat(100_000),
        "- ".repeat(10_000),
        "a: ".repeat(10_000),
        // Billion laughs.
        "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nstages: [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n".to_string(),
    ] {
        let start = Instant::now();
        assert!(parse_pipeline(&text).is_err());
        assert!(start.elapsed() < SLOW, "took {:?}", start.elapsed());
    }
}

/// The pipeline the control plane holds: the first sample, named `app`.
fn app() -> Value {
    let mut app = seeds().remove(0);
    app["name"] = json!("app");
    app
}

const EXECUTION: &str = "99999999-9999-4999-8999-999999999999";

/// Call `target` on a control plane that holds [`app`] and one execution of it; check the
/// answer is a value or a named error.
fn call(target: &str, body: &[u8]) -> Result<(), TestCaseError> {
    let outcome = block_on(async {
        let world = World::with_pipeline(app()).await;
        world
            .api("StartPipelineExecution", json!({"name": "app"}))
            .await
            .unwrap();
        let engine = world.engine();
        let services = Services {
            pipelines: &world.pipelines,
            engine: Some(&engine),
            start_on_create: false,
        };
        let ctx = ServiceContext {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            now: 60.0,
            new_id: "88888888-8888-4888-8888-888888888888".into(),
            caller: Some(support::CALLER.into()),
        };
        let start = Instant::now();
        let answer = handle(&services, &ctx, target, body).await;
        (answer, start.elapsed())
    });
    let (answer, took) = outcome;
    prop_assert!(took < SLOW, "{target} took {took:?}");
    if let Err(e) = answer {
        prop_assert!(
            e.kind.ends_with("Exception") || e.kind == "InternalFailure",
            "{target}: unexpected error kind {}",
            e.kind
        );
        prop_assert!(!e.message.is_empty());
        // Only the engine's absence or a store failure is the service's fault; neither happens
        // in memory.
        prop_assert!(!e.server_fault, "{target}: server fault {e}");
    }
    Ok(())
}

fn operation() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(KNOWN_OPERATIONS).prop_map(|op| format!("CodePipeline_20150709.{op}")),
        1 => text().prop_map(|op| format!("CodePipeline_20150709.{op}")),
        1 => text(),
    ]
}

/// The members of each implemented operation's request (botocore's model), but `pipeline`
/// (see [`mutated_declaration`]).
const REQUESTS: &[(&str, &[&str])] = &[
    ("GetPipeline", &["name", "version"]),
    ("ListPipelines", &["nextToken", "maxResults"]),
    ("DeletePipeline", &["name"]),
    (
        "StartPipelineExecution",
        &["name", "variables", "clientRequestToken", "sourceRevisions"],
    ),
    (
        "GetPipelineExecution",
        &["pipelineName", "pipelineExecutionId"],
    ),
    (
        "ListPipelineExecutions",
        &["pipelineName", "maxResults", "nextToken", "filter"],
    ),
    (
        "StopPipelineExecution",
        &["pipelineName", "pipelineExecutionId", "abandon", "reason"],
    ),
    (
        "RetryStageExecution",
        &[
            "pipelineName",
            "stageName",
            "pipelineExecutionId",
            "retryMode",
        ],
    ),
    (
        "RollbackStage",
        &["pipelineName", "stageName", "targetPipelineExecutionId"],
    ),
    (
        "OverrideStageCondition",
        &[
            "pipelineName",
            "stageName",
            "pipelineExecutionId",
            "conditionType",
        ],
    ),
    (
        "DisableStageTransition",
        &["pipelineName", "stageName", "transitionType", "reason"],
    ),
    (
        "EnableStageTransition",
        &["pipelineName", "stageName", "transitionType"],
    ),
    ("GetPipelineState", &["name"]),
    (
        "ListActionExecutions",
        &["pipelineName", "filter", "maxResults", "nextToken"],
    ),
    (
        "PutJobSuccessResult",
        &[
            "jobId",
            "currentRevision",
            "continuationToken",
            "executionDetails",
            "outputVariables",
        ],
    ),
    ("PutJobFailureResult", &["jobId", "failureDetails"]),
    (
        "PutApprovalResult",
        &["pipelineName", "stageName", "actionName", "result", "token"],
    ),
    ("TagResource", &["resourceArn", "tags"]),
    ("UntagResource", &["resourceArn", "tagKeys"]),
    (
        "ListTagsForResource",
        &["resourceArn", "nextToken", "maxResults"],
    ),
];

/// An object of `members`, each present more often than not.
fn request_object(members: &'static [&'static str]) -> BoxedStrategy<Value> {
    members
        .iter()
        .map(|&m| prop::option::weighted(0.85, member_value(m)).prop_map(move |v| (m, v)))
        .collect::<Vec<_>>()
        .prop_map(object)
        .boxed()
}

/// A plausible value of request member `name`, or (sometimes) any JSON.
fn member_value(name: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match name {
        "version" | "maxResults" => prop_oneof![
            (-2i64..120).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
        ]
        .boxed(),
        "abandon" => any::<bool>().prop_map(Value::Bool).boxed(),
        "variables" | "tags" | "outputVariables" => prop::collection::vec(
            (api_string(), api_string()).prop_map(|(n, v)| json!({"name": n, "value": v, "key": n})),
            0..4,
        )
        .prop_map(move |items| {
            if name == "outputVariables" {
                Value::Object(
                    items
                        .iter()
                        .map(|i| (i["name"].as_str().unwrap_or("").to_string(), i["value"].clone()))
                        .collect(),
                )
            } else {
                Value::Array(items)
            }
        })
        .boxed(),
        "tagKeys" => prop::collection::vec(api_string(), 0..4).prop_map(Value::Array).boxed(),
        "sourceRevisions" => prop::collection::vec(
            request_object(&["actionName", "revisionType", "revisionValue"]),
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        "filter" => prop_oneof![
            request_object(&["succeededInStage"]),
            request_object(&["pipelineExecutionId", "latestInPipelineExecution"]),
        ]
        .boxed(),
        "succeededInStage" => request_object(&["stageName"]),
        "latestInPipelineExecution" => request_object(&["pipelineExecutionId", "startTimeRange"]),
        "currentRevision" => request_object(&["revision", "changeIdentifier", "created", "revisionSummary"]),
        "executionDetails" => request_object(&["summary", "externalExecutionId", "percentComplete"]),
        "failureDetails" => request_object(&["type", "message", "externalExecutionId"]),
        "result" => request_object(&["summary", "status"]),
        "created" | "percentComplete" => any::<f64>().prop_map(|f| json!(f)).boxed(),
        // The names the control plane knows, most of the time.
        "name" | "pipelineName" => prop_oneof![3 => Just(json!("app")), 1 => api_string()].boxed(),
        "pipelineExecutionId" | "targetPipelineExecutionId" => {
            prop_oneof![2 => Just(json!(EXECUTION)), 1 => api_string()].boxed()
        }
        "stageName" | "actionName" => prop_oneof![
            3 => prop::sample::select(vec!["Source", "Build", "Deploy", "Approve", "Approval"]).prop_map(Value::from),
            1 => api_string(),
        ]
        .boxed(),
        "resourceArn" => prop_oneof![
            3 => Just(json!("arn:aws:codepipeline:us-east-1:123456789012:app")),
            1 => api_string(),
        ]
        .boxed(),
        _ => api_string(),
    };
    prop_oneof![6 => plausible, 1 => json_value()].boxed()
}

/// A string the control plane may know: the pipeline, its stages and actions, the execution,
/// its ARN, enumerations, cursors (base64url JSON), or anything.
fn api_string() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "app", "Source", "Build", "Deploy", "Approve", EXECUTION,
            "arn:aws:codepipeline:us-east-1:123456789012:app", "Approved", "Rejected",
            "FAILED_ACTIONS", "ALL_ACTIONS", "Inbound", "Outbound", "BEFORE_ENTRY", "ON_SUCCESS",
            "JobFailed", "COMMIT_ID", "S3_OBJECT_VERSION_ID", "Latest",
            "00000000-0000-4000-8000-000000000000",
        ]).prop_map(Value::from),
        1 => text().prop_map(Value::String),
        1 => json_value().prop_map(|v| Value::String(B64.encode(v.to_string()))),
        1 => (text(), text(), text(), any::<f64>(), text()).prop_map(|(n, p, e, t, a)| {
            let cursor = json!({"n": n, "p": p, "e": e, "t": t, "a": [t, a]});
            Value::String(B64.encode(cursor.to_string()))
        }),
    ]
    .boxed()
}

/// An implemented operation and a plausible request of it.
fn api_request() -> impl Strategy<Value = (String, Value)> {
    prop::sample::select(REQUESTS).prop_flat_map(|(op, members)| {
        (
            Just(format!("CodePipeline_20150709.{op}")),
            request_object(members),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_control_plane_answers_arbitrary_bytes(target in operation(), body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "\\PC{0,64}".prop_map(String::into_bytes),
    ]) {
        call(&target, &body)?;
    }

    #[test]
    fn the_control_plane_answers_arbitrary_json(target in operation(), body in json_value()) {
        call(&target, body.to_string().as_bytes())?;
    }

    #[test]
    fn the_control_plane_answers_plausible_requests((target, body) in api_request()) {
        call(&target, body.to_string().as_bytes())?;
    }

    #[test]
    fn the_control_plane_answers_mutated_declarations(
        op in prop_oneof![Just("CreatePipeline"), Just("UpdatePipeline")],
        declaration in mutated_declaration(),
        tags in prop::option::of(json_value()),
    ) {
        let mut body = json!({"pipeline": declaration});
        if let Some(tags) = tags {
            body["tags"] = tags;
        }
        call(&format!("CodePipeline_20150709.{op}"), body.to_string().as_bytes())?;
    }
}
