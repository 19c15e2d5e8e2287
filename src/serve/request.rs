//! Parses TF Serving / Vertex AI predict bodies into texts (and, for sentence-pair models, their
//! second texts).

use serde_json::Value;

use super::ApiError;

use crate::data::is_blank;

/// The inputs of a predict body: texts, and second texts when every instance has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instances {
    pub texts: Vec<String>,
    pub pairs: Option<Vec<String>>,
}

/// The texts of a predict body. Accepted shapes:
/// - `{"instances": [{"text": "..."}, ...]}` (Vertex AI, TF Serving row format), with
///   `"text_pair": "..."` in every instance for sentence-pair models
/// - `{"instances": ["...", ...]}`
/// - `{"inputs": {"text": ["...", ...]}}` (with `"text_pair": [...]` for pairs) or
///   `{"inputs": ["...", ...]}` (TF Serving columnar)
pub fn parse_instances(body: &[u8], max_instances: usize) -> Result<Instances, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!("request body is not valid UTF-8 (byte {})", e.valid_up_to()))
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("empty request body; expected {\"instances\": [{\"text\": \"...\"}]}"));
    }
    let Strict(value) = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request("the body must be a JSON object with `instances` or `inputs`"));
    };
    let (texts, pairs, key) = match (obj.get("instances"), obj.get("inputs")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give either `instances` or `inputs`, not both"));
        }
        (None, None) => {
            return Err(ApiError::bad_request("missing `instances` (or `inputs`): expected {\"instances\": [{\"text\": \"...\"}]}"));
        }
        (Some(instances), None) => {
            let (texts, pairs) = rows(instances)?;
            (texts, pairs, "instances")
        }
        (None, Some(inputs)) => {
            let (texts, pairs) = columns(inputs)?;
            (texts, pairs, "inputs")
        }
    };
    if texts.is_empty() {
        // The key the client sent: `{"inputs": {"text": []}}` was answered "`instances` is empty".
        return Err(ApiError::bad_request(format!("`{key}` is empty")));
    }
    if texts.len() > max_instances {
        return Err(ApiError::TooLarge(format!("{} instances in one request; the limit is {max_instances}", texts.len())));
    }
    // Texts of only whitespace or invisible characters (U+200B, U+FEFF, ...) are as empty as
    // "" once normalised: all of them are 400s, never a score for `[CLS] [SEP]`.
    for (i, t) in texts.iter().enumerate() {
        if is_blank(t) {
            return Err(ApiError::bad_request(format!("instance {i}: `text` is empty (or only invisible characters)")));
        }
    }
    for (i, t) in pairs.iter().flatten().enumerate() {
        if is_blank(t) {
            return Err(ApiError::bad_request(format!("instance {i}: `text_pair` is empty (or only invisible characters)")));
        }
    }
    Ok(Instances { texts, pairs })
}

/// Parses JSON, refusing an object that holds the same key twice (every protocol's bodies).
pub(super) fn strict_json(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|Strict(v)| v)
}

/// A JSON value that refuses an object holding the same key twice: serde_json's `Value` keeps
/// the last one silently, so `{"instances": [a], "instances": [b]}` scored only `b`.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if obj.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
            }
            let Strict(v) = map.next_value()?;
            obj.insert(key, v);
        }
        Ok(Value::Object(obj))
    }
}

/// Texts and, when any instance has one, the second texts (then every instance needs one).
type Rows = (Vec<String>, Option<Vec<String>>);

fn string_field(o: &serde_json::Map<String, Value>, i: usize, name: &str) -> Result<Option<String>, ApiError> {
    match o.get(name) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_request(format!("instance {i}: `{name}` must be a string, got {}", kind(other)))),
        None => Ok(None),
    }
}

fn rows(instances: &Value) -> Result<Rows, ApiError> {
    let Value::Array(items) = instances else {
        return Err(ApiError::bad_request(format!("`instances` must be a list, got {}", kind(instances))));
    };
    let parsed: Vec<(String, Option<String>)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok((s.clone(), None)),
            Value::Object(o) => match string_field(o, i, "text")? {
                Some(text) => Ok((text, string_field(o, i, "text_pair")?)),
                None => Err(ApiError::bad_request(format!("instance {i}: missing `text`"))),
            },
            other => Err(ApiError::bad_request(format!(
                "instance {i} must be a string or {{\"text\": ...}}, got {}",
                kind(other)
            ))),
        })
        .collect::<Result<_, _>>()?;
    let with_pair = parsed.iter().filter(|(_, p)| p.is_some()).count();
    if with_pair > 0 && with_pair < parsed.len() {
        let i = parsed.iter().position(|(_, p)| p.is_none()).unwrap_or(0);
        return Err(ApiError::bad_request(format!("instance {i}: missing `text_pair` (other instances have one; give every instance its pair)")));
    }
    let (texts, pairs): (Vec<String>, Vec<Option<String>>) = parsed.into_iter().unzip();
    Ok((texts, pairs.into_iter().collect()))
}

fn columns(inputs: &Value) -> Result<Rows, ApiError> {
    let (list, pair_list) = match inputs {
        Value::Object(o) => (o.get("text").ok_or_else(|| ApiError::bad_request("`inputs` is missing `text`"))?, o.get("text_pair")),
        other => (other, None),
    };
    let as_input = |e: ApiError| ApiError::bad_request(e.message().replace("instance", "input"));
    let texts = match list {
        Value::Array(_) => rows(list).map_err(as_input)?.0,
        Value::String(s) => vec![s.clone()],
        other => return Err(ApiError::bad_request(format!("`inputs.text` must be a list of strings, got {}", kind(other)))),
    };
    let pairs = match pair_list {
        None => None,
        Some(Value::Array(_)) => Some(rows(pair_list.unwrap_or(&Value::Null)).map_err(as_input)?.0),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(other) => return Err(ApiError::bad_request(format!("`inputs.text_pair` must be a list of strings, got {}", kind(other)))),
    };
    if let Some(p) = &pairs
        && p.len() != texts.len()
    {
        return Err(ApiError::bad_request(format!("`inputs.text` has {} texts but `inputs.text_pair` {}", texts.len(), p.len())));
    }
    Ok((texts, pairs))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<String> {
        parse_instances(body.as_bytes(), 8).unwrap().texts
    }

    fn err(body: &[u8]) -> String {
        parse_instances(body, 2).unwrap_err().message().to_string()
    }

    #[test]
    fn accepts_every_documented_shape() {
        assert_eq!(ok(r#"{"instances": [{"text": "a"}, {"text": "b"}]}"#), ["a", "b"]);
        assert_eq!(ok(r#"{"instances": ["a"]}"#), ["a"]);
        assert_eq!(ok(r#"{"inputs": {"text": ["a", "b"]}}"#), ["a", "b"]);
        assert_eq!(ok(r#"{"inputs": ["a"]}"#), ["a"]);
    }

    #[test]
    fn pairs_come_as_text_pair_in_rows_or_columns_and_must_be_complete() {
        let parse = |b: &str| parse_instances(b.as_bytes(), 8);
        let rows = parse(r#"{"instances": [{"text": "q1", "text_pair": "a1"}, {"text": "q2", "text_pair": "a2"}]}"#).unwrap();
        assert_eq!((rows.texts, rows.pairs), (vec!["q1".to_string(), "q2".into()], Some(vec!["a1".to_string(), "a2".into()])));
        let cols = parse(r#"{"inputs": {"text": ["q"], "text_pair": ["a"]}}"#).unwrap();
        assert_eq!(cols.pairs, Some(vec!["a".to_string()]));
        assert_eq!(parse(r#"{"instances": ["q"]}"#).unwrap().pairs, None);
        let msg = |b: &str| parse(b).unwrap_err().message().to_string();
        assert!(msg(r#"{"instances": [{"text": "q", "text_pair": "a"}, {"text": "q2"}]}"#).contains("instance 1: missing `text_pair`"));
        assert!(msg(r#"{"instances": [{"text": "q", "text_pair": 3}]}"#).contains("`text_pair` must be a string, got a number"));
        assert!(msg(r#"{"instances": [{"text": "q", "text_pair": " "}]}"#).contains("instance 0: `text_pair` is empty"));
        assert!(msg(r#"{"inputs": {"text": ["q", "r"], "text_pair": ["a"]}}"#).contains("has 2 texts but `inputs.text_pair` 1"));
    }

    #[test]
    fn names_each_problem() {
        assert!(err(b"{oops").contains("malformed JSON"));
        assert!(err(b"[1]").contains("JSON object"));
        assert!(err(br#"{"instances": [{"txt": "a"}]}"#).contains("instance 0: missing `text`"));
        assert!(err(br#"{"instances": [{"text": 3}]}"#).contains("`text` must be a string, got a number"));
        assert!(err(br#"{"instances": []}"#).contains("`instances` is empty"));
        // Regression: the columnar body's empty list was answered "`instances` is empty".
        assert!(err(br#"{"inputs": {"text": []}}"#).contains("`inputs` is empty"));
        assert!(err(br#"{"inputs": []}"#).contains("`inputs` is empty"));
        assert!(err(br#"{"instances": "a"}"#).contains("must be a list"));
        assert!(err(br#"{"instances": ["a"], "inputs": ["b"]}"#).contains("not both"));
        assert!(err(br#"{"foo": 1}"#).contains("missing `instances`"));
        assert!(err(br#"{"instances": ["  "]}"#).contains("instance 0: `text` is empty"));
        // Regression (issue 17): texts that normalise to nothing got 200 while "" got 400.
        assert!(err("{\"instances\": [\"\u{200B}\u{FEFF}\"]}".as_bytes()).contains("instance 0: `text` is empty"));
        assert!(err(b"{\"instances\": [\"\xff\"]}").contains("not valid UTF-8"));
        // Regression (issue 17): duplicate keys passed silently (the last one won).
        assert!(err(br#"{"instances": ["a"], "instances": ["b"]}"#).contains("duplicate key `instances`"));
        assert!(err(br#"{"instances": [{"text": "a", "text": "b"}]}"#).contains("duplicate key `text`"));
        assert_eq!(ok(r#"{"instances": [{"text": "a", "extra": [1, 2.5, null, true, {"x": "y"}]}]}"#), ["a"]);
        let too_many = parse_instances(br#"{"instances": ["a", "b", "c"]}"#, 2).unwrap_err();
        assert_eq!(too_many.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
