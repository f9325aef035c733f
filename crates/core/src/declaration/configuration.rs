//! Action and rule `configuration` maps: the type, secret values and their
//! masking, and the lenient reader that accepts booleans and numbers.

use std::collections::BTreeMap;

use super::PipelineDeclaration;

/// An action's or rule's `configuration`: configuration key to value.
pub type Configuration = BTreeMap<String, String>;

/// Configuration keys whose values are secrets: CodePipeline answers them masked
/// ([`MASKED`]) and never shows them again.
pub const SECRET_CONFIGURATION_KEYS: &[&str] = &["OAuthToken"];

/// Configuration keys that say what a secret value is for: a stored secret is kept through a
/// masked value only while they stay the same (no one re-points a token someone else gave at
/// another repository without knowing it).
const SECRET_BOUND_KEYS: &[&str] = &["Owner", "Repo"];

/// What a secret configuration value reads as in every answer.
pub const MASKED: &str = "****";

/// `configuration` with its secret values masked.
pub fn masked_configuration(configuration: &Configuration) -> Configuration {
    let mut out = configuration.clone();
    for key in SECRET_CONFIGURATION_KEYS {
        if let Some(v) = out.get_mut(*key) {
            *v = MASKED.to_string();
        }
    }
    out
}

impl PipelineDeclaration {
    /// The declaration as the API shows it: secret configuration values masked.
    pub fn masked(&self) -> PipelineDeclaration {
        let mut out = self.clone();
        for action in out.stages.iter_mut().flat_map(|s| s.actions.iter_mut()) {
            if let Some(c) = &mut action.configuration {
                *c = masked_configuration(c);
            }
        }
        out
    }

    /// Secret configuration values sent back masked (a GetPipeline answer round-tripped into
    /// UpdatePipeline) keep the value `previous` has for the same stage and action of the same
    /// type. A masked value with nothing to keep is an error naming the member.
    pub fn keep_masked_secrets(&mut self, previous: &PipelineDeclaration) -> Result<(), String> {
        for (i, stage) in self.stages.iter_mut().enumerate() {
            for (j, action) in stage.actions.iter_mut().enumerate() {
                let Some(configuration) = &mut action.configuration else {
                    continue;
                };
                let before = previous
                    .stages
                    .iter()
                    .find(|s| s.name == stage.name)
                    .and_then(|s| s.actions.iter().find(|a| a.name == action.name))
                    .filter(|a| a.action_type_id == action.action_type_id)
                    .and_then(|a| a.configuration.as_ref());
                for key in SECRET_CONFIGURATION_KEYS {
                    if configuration.get(*key).map(String::as_str) != Some(MASKED) {
                        continue;
                    }
                    if let Some(b) = before {
                        let moved: Vec<&str> = SECRET_BOUND_KEYS
                            .iter()
                            .copied()
                            .filter(|k| b.get(*k) != configuration.get(*k))
                            .collect();
                        if !moved.is_empty() {
                            return Err(format!(
                                "pipeline.stages[{i}].actions[{j}].configuration.{key}: \
                                 {MASKED} keeps the stored secret only for the repository it \
                                 was given for, and {} changed: send the value itself",
                                moved.join(" and ")
                            ));
                        }
                    }
                    match before.and_then(|b| b.get(*key)) {
                        Some(value) => {
                            configuration.insert(key.to_string(), value.clone());
                        }
                        None => {
                            return Err(format!(
                                "pipeline.stages[{i}].actions[{j}].configuration.{key}: \
                                 {MASKED} stands for a stored secret, and this action had \
                                 none; send the value itself"
                            ))
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Configuration maps: string to string, with booleans and numbers accepted
/// (as their text) and duplicate keys refused.
pub(super) mod lenient_configuration {
    use super::Configuration;
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use std::fmt;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Configuration>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Configuration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of configuration keys to string values")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(MapVisitor).map(Some)
        }
    }

    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = Configuration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of configuration keys to string values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Configuration, A::Error> {
            let mut out = Configuration::new();
            while let Some(key) = map.next_key::<String>()? {
                let ScalarText(value) = map.next_value()?;
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "duplicate configuration key `{key}`"
                    )));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    /// A string, or a boolean / number kept as its text.
    struct ScalarText(String);

    impl<'de> de::Deserialize<'de> for ScalarText {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarVisitor)
        }
    }

    struct ScalarVisitor;

    impl Visitor<'_> for ScalarVisitor {
        type Value = ScalarText;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<ScalarText, E> {
            Ok(ScalarText(v))
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }
    }
}
