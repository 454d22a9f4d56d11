//! The one table of methods: a spec's `kind:` name, the variant of [`MethodConfig`] it becomes, and the
//! parameter type that implements [`Method`]. Adding a method is adding its line here; everything that
//! dispatches on the kind (parsing with positions, validation, resources, fitting, loading a saved model,
//! the report's method order) is generated from it.

use std::fmt;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{frozen, lsa, tune, word2vec, Examples, FitContext, Fitted, Method, Predictor, Saved};
use crate::error::MethodError;

macro_rules! registry {
    ($($kind:literal => $variant:ident($params:ty),)+) => {
        /// A method and its hyperparameters, as written in a spec's `method:` section.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind", rename_all = "lowercase")]
        pub enum MethodConfig {
            $($variant($params),)+
        }

        /// The method kinds, in the order the report lists them.
        pub const METHOD_KINDS: &[&str] = &[$($kind),+];

        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum MethodKind {
            $($variant,)+
        }

        impl MethodConfig {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $kind,)+
                }
            }

            fn method(&self) -> &dyn Method {
                match self {
                    $(Self::$variant(p) => p,)+
                }
            }
        }

        /// The parameters of `kind`, read from the rest of the section.
        fn parse<'de, D: Deserializer<'de>>(kind: MethodKind, rest: D) -> Result<MethodConfig, D::Error> {
            Ok(match kind {
                $(MethodKind::$variant => MethodConfig::$variant(<$params>::deserialize(rest)?.resolved($kind)),)+
            })
        }
    };
}

registry! {
    "lsa" => Lsa(lsa::LsaParams),
    "frozen" => Frozen(frozen::FrozenParams),
    "finetune" => Finetune(tune::params::TrainParams),
    "lora" => Lora(tune::params::TrainParams),
    "word2vec" => Word2Vec(word2vec::Word2VecParams),
}

impl MethodConfig {
    /// Checks value ranges; on error returns the offending key and a message.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.method().validate(self.kind())
    }

    /// Checks that what the method needs besides data (a backbone folder) is there, before any run starts.
    pub fn check_resources(&self, models_dir: &Path) -> Result<(), crate::error::ModelError> {
        self.method().check_resources(models_dir)
    }

    pub fn fit(&self, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError> {
        self.method().fit(self.kind(), train, ctx)
    }

    /// The model a run of this method saved, or `None` for a method that keeps none.
    pub fn load(&self, saved: &Saved<'_>) -> anyhow::Result<Option<Box<dyn Predictor>>> {
        self.method().load(self.kind(), saved)
    }
}

/// Deserialises `{kind: lsa, <params>}`. When `kind` is the first key (as in every spec we write), the
/// parameters are read straight from the YAML stream so that an unknown or mistyped parameter is reported
/// at its own line and column; otherwise the section is buffered and read without positions.
impl<'de> Deserialize<'de> for MethodConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MethodVisitor)
    }
}

struct MethodVisitor;

impl<'de> Visitor<'de> for MethodVisitor {
    type Value = MethodConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a method mapping with `kind` (one of: {})", METHOD_KINDS.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MethodConfig, A::Error> {
        let needs_kind = || de::Error::custom(format!("the method needs `kind` (one of: {})", METHOD_KINDS.join(", ")));
        let first: Option<String> = map.next_key()?;
        match first.as_deref() {
            None => Err(needs_kind()),
            Some("kind") => {
                let kind: MethodKind = map.next_value()?;
                parse(kind, de::value::MapAccessDeserializer::new(map))
            }
            Some(first) => {
                let mut buffered = serde_json::Map::new();
                buffered.insert(first.to_string(), map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    buffered.insert(k, v);
                }
                let kind = buffered.remove("kind").ok_or_else(needs_kind)?;
                let kind: MethodKind = serde_json::from_value(kind).map_err(de::Error::custom)?;
                parse(kind, serde_json::Value::Object(buffered)).map_err(de::Error::custom)
            }
        }
    }
}
