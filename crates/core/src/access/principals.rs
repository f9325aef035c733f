//! The IAM door's authorization: the caller's own IAM policies decide, as they do for
//! CodePipeline.
//!
//! Through the IAM door, AWS has authenticated the caller (SigV4 for `lambda`) and checked that it
//! may invoke the Function URL. With [`IamDoorAuthorization::IamPolicies`] (the default), each
//! operation is then checked against the caller's identity policies with
//! `iam:SimulatePrincipalPolicy`: the action `codepipeline:<Operation>` on the pipeline's ARN
//! (`*` for operations on no pipeline in particular), exactly what a policy written for
//! CodePipeline grants. Key management needs `codepipeline:ManagePipewrightAccessKeys` on `*`
//! (which `codepipeline:*` covers). An assumed role's policies are its role's (the ARN in the
//! request names the session; its path comes from `iam:GetRole`); the account root may do
//! everything; other principals (federated users) cannot be checked and are refused, with a
//! message saying to use a role, a user or a key. Answers are cached for a minute.
//!
//! With [`IamDoorAuthorization::InvokeOnly`], whoever may invoke the URL may do everything (the
//! first releases' behaviour).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::port_error::PortError;

/// How long an answer (allowed or not, a role's ARN) is trusted.
pub const CACHE_TTL: f64 = 60.0;
/// The most answers kept (the cache is emptied when full).
const CACHE_CAPACITY: usize = 10_000;

/// The action key management is checked as (covered by `codepipeline:*`).
pub const MANAGE_KEYS_ACTION: &str = "codepipeline:ManagePipewrightAccessKeys";

/// What decides, through the IAM door, whether a caller may run an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamDoorAuthorization {
    /// The caller's identity policies, per operation and pipeline.
    IamPolicies,
    /// Being allowed to invoke the Function URL is enough for everything.
    InvokeOnly,
}

impl IamDoorAuthorization {
    /// `IamPolicies` or `InvokeOnly` (the template parameter's values); `Err` names the value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "IamPolicies" => Ok(Self::IamPolicies),
            "InvokeOnly" => Ok(Self::InvokeOnly),
            other => Err(format!(
                "IAM_DOOR_AUTHORIZATION: {other:?} is neither IamPolicies nor InvokeOnly"
            )),
        }
    }
}

/// Whose identity policies apply to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The account's root user: every action is allowed.
    Root,
    /// An IAM user or role, by its ARN.
    Arn(String),
    /// An assumed role's session: the role's policies apply; its ARN (with its path) is looked
    /// up by name.
    Role {
        /// The role's account.
        account: String,
        /// The role's name.
        name: String,
    },
}

/// Whose policies apply to `caller` (the ARN the IAM door reports); `Err` says why none can be
/// checked.
pub fn policy_source(caller: &str) -> Result<PolicySource, String> {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, _, service, _, account, resource] = parts[..] else {
        return Err(format!("{caller:?} is not an IAM ARN"));
    };
    match (service, resource.split_once('/')) {
        ("iam", None) if resource == "root" => Ok(PolicySource::Root),
        ("iam", Some(("user" | "role", _))) => Ok(PolicySource::Arn(caller.to_string())),
        ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
            Some((name, _session)) if !name.is_empty() => Ok(PolicySource::Role {
                account: account.to_string(),
                name: name.to_string(),
            }),
            _ => Err(format!("{caller:?} names no role")),
        },
        _ => Err(format!(
            "the IAM policies of {caller} cannot be checked (only IAM users and roles can): \
             call as an IAM role or user, or with a Pipewright access key"
        )),
    }
}

/// IAM, as the IAM door needs it.
#[async_trait]
pub trait PrincipalPolicies: Send + Sync {
    /// The ARN (with its path) of role `name` in this account, `None` when there is none.
    async fn role_arn(&self, name: &str) -> Result<Option<String>, PortError>;
    /// Whether the identity policies of `source_arn` allow `action` on `resource`
    /// (`iam:SimulatePrincipalPolicy`).
    async fn allows(
        &self,
        source_arn: &str,
        action: &str,
        resource: &str,
    ) -> Result<bool, PortError>;
}

/// The answer of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The policies allow it.
    Allowed,
    /// They do not (or none can be checked): the reason, for the refusal.
    Denied(String),
}

type Answers = HashMap<(String, String, String), (f64, bool)>;

/// [`PrincipalPolicies`] with a cache: an answer is trusted for [`CACHE_TTL`] seconds.
pub struct CachedPolicies {
    iam: Box<dyn PrincipalPolicies>,
    answers: Mutex<Answers>,
    roles: Mutex<HashMap<String, (f64, Option<String>)>>,
}

impl CachedPolicies {
    /// A cache over `iam`.
    pub fn new(iam: impl PrincipalPolicies + 'static) -> Self {
        Self {
            iam: Box::new(iam),
            answers: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `caller` may do `action` on `resource`, at `now`.
    pub async fn check(
        &self,
        caller: &str,
        action: &str,
        resource: &str,
        now: f64,
    ) -> Result<Verdict, PortError> {
        let source = match policy_source(caller) {
            Ok(PolicySource::Root) => return Ok(Verdict::Allowed),
            Ok(PolicySource::Arn(arn)) => arn,
            Ok(PolicySource::Role { name, .. }) => match self.role_arn(&name, now).await? {
                Some(arn) => arn,
                None => return Ok(Verdict::Denied(format!("role {name} does not exist"))),
            },
            Err(reason) => return Ok(Verdict::Denied(reason)),
        };
        let key = (source.clone(), action.to_string(), resource.to_string());
        let cached = lock(&self.answers).get(&key).copied();
        let allowed = match cached {
            Some((at, allowed)) if now >= at && now - at < CACHE_TTL => allowed,
            _ => {
                let allowed = self.iam.allows(&source, action, resource).await?;
                let mut answers = lock(&self.answers);
                if answers.len() >= CACHE_CAPACITY {
                    answers.clear();
                }
                answers.insert(key, (now, allowed));
                allowed
            }
        };
        Ok(if allowed {
            Verdict::Allowed
        } else {
            Verdict::Denied(format!(
                "no identity-based policy of {source} allows {action} on {resource}"
            ))
        })
    }

    async fn role_arn(&self, name: &str, now: f64) -> Result<Option<String>, PortError> {
        if let Some((at, arn)) = lock(&self.roles).get(name) {
            if now >= *at && now - at < CACHE_TTL {
                return Ok(arn.clone());
            }
        }
        let arn = self.iam.role_arn(name).await?;
        let mut roles = lock(&self.roles);
        if roles.len() >= CACHE_CAPACITY {
            roles.clear();
        }
        roles.insert(name.to_string(), (now, arn.clone()));
        Ok(arn)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn callers_map_to_the_policies_that_apply() {
        assert_eq!(
            policy_source("arn:aws:iam::123456789012:root"),
            Ok(PolicySource::Root)
        );
        assert_eq!(
            policy_source("arn:aws:iam::123456789012:user/ops/alice"),
            Ok(PolicySource::Arn(
                "arn:aws:iam::123456789012:user/ops/alice".into()
            ))
        );
        assert_eq!(
            policy_source("arn:aws:sts::123456789012:assumed-role/Deployer/ci-run-7"),
            Ok(PolicySource::Role {
                account: "123456789012".into(),
                name: "Deployer".into()
            })
        );
        for refused in [
            "arn:aws:sts::123456789012:federated-user/bob",
            "arn:aws:sts::123456789012:assumed-role//x",
            "not an arn",
            "arn:aws:s3:::bucket",
        ] {
            assert!(policy_source(refused).is_err(), "{refused}");
        }
    }

    /// Alice may Get* on web-*; roles resolve with their path.
    struct Iam {
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl PrincipalPolicies for Iam {
        async fn role_arn(&self, name: &str) -> Result<Option<String>, PortError> {
            Ok((name == "Deployer").then(|| "arn:aws:iam::123456789012:role/ci/Deployer".into()))
        }
        async fn allows(
            &self,
            source: &str,
            action: &str,
            resource: &str,
        ) -> Result<bool, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(match source {
                "arn:aws:iam::123456789012:user/alice" => {
                    action.starts_with("codepipeline:Get") && resource.ends_with(":web-app")
                }
                "arn:aws:iam::123456789012:role/ci/Deployer" => true,
                _ => false,
            })
        }
    }

    #[tokio::test]
    async fn the_callers_policies_decide_and_answers_are_cached_a_minute() {
        let calls = Arc::new(AtomicUsize::new(0));
        let cache = CachedPolicies::new(Iam {
            calls: calls.clone(),
        });
        let alice = "arn:aws:iam::123456789012:user/alice";
        let web = "arn:aws:codepipeline:us-east-1:123456789012:web-app";
        let db = "arn:aws:codepipeline:us-east-1:123456789012:db";
        assert_eq!(
            cache
                .check(alice, "codepipeline:GetPipeline", web, 0.0)
                .await,
            Ok(Verdict::Allowed)
        );
        let denied = cache
            .check(alice, "codepipeline:GetPipeline", db, 0.0)
            .await
            .unwrap();
        assert!(
            matches!(&denied, Verdict::Denied(m) if m.contains("codepipeline:GetPipeline") && m.contains(db)),
            "{denied:?}"
        );
        assert!(matches!(
            cache
                .check(alice, "codepipeline:DeletePipeline", web, 0.0)
                .await,
            Ok(Verdict::Denied(_))
        ));
        let before = calls.load(Ordering::SeqCst);
        cache
            .check(alice, "codepipeline:GetPipeline", web, 59.0)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), before, "cached");
        cache
            .check(alice, "codepipeline:GetPipeline", web, 61.0)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), before + 1, "asked again");

        let session = "arn:aws:sts::123456789012:assumed-role/Deployer/run-1";
        assert_eq!(
            cache.check(session, MANAGE_KEYS_ACTION, "*", 0.0).await,
            Ok(Verdict::Allowed)
        );
        let gone = "arn:aws:sts::123456789012:assumed-role/Gone/run-1";
        assert!(matches!(
            cache.check(gone, "codepipeline:GetPipeline", web, 0.0).await,
            Ok(Verdict::Denied(m)) if m.contains("role Gone does not exist")
        ));
        assert_eq!(
            cache
                .check(
                    "arn:aws:iam::123456789012:root",
                    "codepipeline:DeletePipeline",
                    web,
                    0.0
                )
                .await,
            Ok(Verdict::Allowed)
        );
        assert!(matches!(
            cache.check("arn:aws:sts::123456789012:federated-user/bob", "codepipeline:GetPipeline", web, 0.0).await,
            Ok(Verdict::Denied(m)) if m.contains("Pipewright access key")
        ));
    }

    #[test]
    fn the_setting_is_one_of_two_values() {
        assert_eq!(
            IamDoorAuthorization::parse("IamPolicies"),
            Ok(IamDoorAuthorization::IamPolicies)
        );
        assert_eq!(
            IamDoorAuthorization::parse("InvokeOnly"),
            Ok(IamDoorAuthorization::InvokeOnly)
        );
        assert!(IamDoorAuthorization::parse("yes")
            .unwrap_err()
            .contains("IAM_DOOR_AUTHORIZATION"));
    }
}
