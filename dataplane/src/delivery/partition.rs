//! Dynamic partitioning: partition keys from each record by a jq query (the
//! `MetadataExtraction` processor, `JsonParsingEngine: JQ-1.6`), evaluated with jaq.
//!
//! The query must produce an object (`{customer: .customer_id, year: .ts | ...}`); its members
//! become the values of `!{partitionKeyFromQuery:<name>}` in the prefix. Strings are used as
//! they are, numbers and booleans as their JSON text. A record that is not JSON, a query that
//! fails, or a result that is not an object of scalars is a partitioning failure.

use std::collections::BTreeMap;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, Compiler, Ctx, Vars};
use jaq_json::Val;

/// Partition keys of one record.
pub type Keys = BTreeMap<String, String>;

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

fn compile(query: &str) -> Result<Filter, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: query,
                path: (),
            },
        )
        .map_err(|e| format!("The jq query {query:?} does not parse: {e:?}"))?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|e| format!("The jq query {query:?} does not compile: {e:?}"))
}

/// Checks a query at CreateDeliveryStream/UpdateDestination time.
pub fn check(query: &str) -> Result<(), String> {
    compile(query).map(drop)
}

fn scalar(v: &Val) -> Option<String> {
    match v {
        Val::TStr(b) | Val::BStr(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Val::Num(_) | Val::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// The partition keys of every record, in order.
pub fn extract(query: &str, records: &[&[u8]]) -> Vec<Result<Keys, String>> {
    let filter = match compile(query) {
        Ok(f) => f,
        Err(e) => return records.iter().map(|_| Err(e.clone())).collect(),
    };
    records
        .iter()
        .map(|data| {
            let input = jaq_json::read::parse_single(data)
                .map_err(|e| format!("The record is not valid JSON: {e}"))?;
            let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
            let first = filter
                .id
                .run((ctx, input))
                .next()
                .ok_or("The jq query produced no output.")?;
            // `halt` must not stop the server, so exceptions are turned into errors here
            // rather than with jaq's unwrap_valr (which exits the process on halt).
            let out = first.map_err(|e| match e.get_err() {
                Ok(err) => format!("The jq query failed: {err}"),
                Err(_) => "The jq query called halt.".to_string(),
            })?;
            let Val::Obj(map) = out else {
                return Err(format!("The jq query produced {out}, not an object."));
            };
            let mut keys = Keys::new();
            for (k, v) in map.iter() {
                let name = scalar(k).ok_or("A partition key name is not a string.")?;
                let value = scalar(v).ok_or_else(|| {
                    format!("The partition key {name} is {v}, not a string, number or boolean.")
                })?;
                keys.insert(name, value);
            }
            Ok(keys)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_extract_string_and_number_keys() {
        let out = extract(
            "{customer: .customer_id, year: .year}",
            &[
                br#"{"customer_id":"c-1","year":2024}"#,
                b"not json",
                br#"{"customer_id":{"x":1}}"#,
            ],
        );
        assert_eq!(
            out[0].clone().unwrap(),
            Keys::from([
                ("customer".into(), "c-1".into()),
                ("year".into(), "2024".into())
            ])
        );
        assert!(out[1].as_ref().unwrap_err().contains("not valid JSON"));
        assert!(out[2].is_err());
    }

    #[test]
    fn bad_queries_are_refused_and_halt_does_not_exit() {
        assert!(check("{a: .x").is_err());
        assert!(check("{a: .x}").is_ok());
        let out = extract("halt", &[b"{}"]);
        assert!(out[0].is_err());
    }
}
