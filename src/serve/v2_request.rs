//! Parses an Open Inference Protocol (V2) `infer` request into texts: the JSON form, and the
//! binary tensor data extension that `tritonclient` uses by default (a JSON header of
//! `Inference-Header-Content-Length` bytes, then each BYTES tensor as 4-byte little-endian
//! lengths and bytes).

use serde_json::{Map, Value};

use super::{ApiError, Instances};
use crate::data::is_blank;

/// A parsed `infer` request.
#[derive(Debug, PartialEq)]
pub struct InferRequest {
    pub id: Option<String>,
    pub instances: Instances,
    /// The outputs asked for by name (`None`: all).
    pub outputs: Option<Vec<String>>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// `header_len`: the `Inference-Header-Content-Length` header, when the body carries binary data.
pub fn parse_infer(body: &[u8], header_len: Option<&str>, max_instances: usize) -> Result<InferRequest, ApiError> {
    let (json, mut binary) = match header_len {
        Some(h) => {
            let n: usize = h.trim().parse().map_err(|_| bad(format!("Inference-Header-Content-Length `{h}` is not a byte count")))?;
            if n > body.len() {
                return Err(bad(format!("Inference-Header-Content-Length {n} exceeds the {}-byte body", body.len())));
            }
            body.split_at(n)
        }
        None => (body, &[][..]),
    };
    let text = std::str::from_utf8(json).map_err(|e| bad(format!("the JSON header is not valid UTF-8 (byte {})", e.valid_up_to())))?;
    let value = super::request::strict_json(text).map_err(|e| bad(format!("malformed JSON: {e}")))?;
    let Value::Object(request) = value else {
        return Err(bad("the body must be a JSON object: {\"inputs\": [{\"name\": \"text\", \"shape\": [N], \"datatype\": \"BYTES\", \"data\": [...]}]}"));
    };
    let Some(Value::Array(inputs)) = request.get("inputs") else {
        return Err(bad("missing `inputs`: a list of tensors, the texts in a BYTES tensor named `text`"));
    };
    let (mut texts, mut pairs) = (None, None);
    for input in inputs {
        let Value::Object(input) = input else { return Err(bad("each input must be a tensor object")) };
        let name = input.get("name").and_then(Value::as_str).unwrap_or("");
        let slot = match name {
            "text" => &mut texts,
            "text_pair" => &mut pairs,
            other => return Err(bad(format!("unknown input `{other}`: the inputs are `text` (and `text_pair` for pair models), BYTES"))),
        };
        if slot.is_some() {
            return Err(bad(format!("input `{name}` is given twice")));
        }
        *slot = Some(strings(name, input, &mut binary)?);
    }
    if !binary.is_empty() {
        return Err(bad(format!("{} bytes of binary data follow the inputs that no input claims", binary.len())));
    }
    let texts = texts.ok_or_else(|| bad("missing the input `text` (BYTES, shape [N])"))?;
    if texts.is_empty() {
        return Err(bad("input `text` holds no texts"));
    }
    if texts.len() > max_instances {
        return Err(ApiError::TooLarge(format!("{} texts in one request; the limit is {max_instances}", texts.len())));
    }
    if let Some(p) = &pairs
        && p.len() != texts.len()
    {
        return Err(bad(format!("{} texts but {} text_pair values", texts.len(), p.len())));
    }
    for (name, values) in [("text", Some(&texts)), ("text_pair", pairs.as_ref())] {
        if let Some(i) = values.and_then(|v| v.iter().position(|t| is_blank(t))) {
            return Err(bad(format!("{name}[{i}] is empty (or only invisible characters)")));
        }
    }
    let outputs = match request.get("outputs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|o| o.get("name").and_then(Value::as_str).map(str::to_string).ok_or_else(|| bad("each requested output needs a `name`")))
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(bad("`outputs` must be a list of {\"name\": ...}")),
    };
    let id = request.get("id").and_then(Value::as_str).map(str::to_string);
    Ok(InferRequest { id, instances: Instances { texts, pairs }, outputs })
}

/// A BYTES tensor's elements: from `data` (row-major, nested lists flattened) or, with
/// `parameters.binary_data_size`, from the next bytes of the binary section.
fn strings(name: &str, input: &Map<String, Value>, binary: &mut &[u8]) -> Result<Vec<String>, ApiError> {
    let datatype = input.get("datatype").and_then(Value::as_str).unwrap_or("");
    if datatype != "BYTES" {
        return Err(bad(format!("input `{name}` has datatype `{datatype}`; texts are BYTES")));
    }
    let shape: Vec<u64> = match input.get("shape") {
        Some(Value::Array(dims)) => dims.iter().map(|d| d.as_u64().ok_or_else(|| bad(format!("input `{name}`: the shape holds {d}")))).collect::<Result<_, _>>()?,
        _ => return Err(bad(format!("input `{name}` needs a shape, e.g. [N]"))),
    };
    if shape.len() > 2 || (shape.len() == 2 && shape[1] != 1) {
        return Err(bad(format!("input `{name}` has shape {shape:?}; texts are [N] or [N, 1]")));
    }
    let count = shape.iter().product::<u64>() as usize;
    let binary_size = input.get("parameters").and_then(|p| p.get("binary_data_size")).and_then(Value::as_u64);
    let values = match (binary_size, input.get("data")) {
        (Some(size), _) => {
            let size = size as usize;
            if size > binary.len() {
                return Err(bad(format!("input `{name}` claims {size} binary bytes; {} are left", binary.len())));
            }
            let (mine, rest) = binary.split_at(size);
            *binary = rest;
            binary_strings(name, mine)?
        }
        (None, Some(data)) => {
            let mut out = Vec::new();
            flatten(name, data, &mut out)?;
            out
        }
        (None, None) => return Err(bad(format!("input `{name}` has no `data`"))),
    };
    if values.len() != count {
        return Err(bad(format!("input `{name}` holds {} elements for shape {shape:?}", values.len())));
    }
    Ok(values)
}

fn flatten(name: &str, v: &Value, out: &mut Vec<String>) -> Result<(), ApiError> {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().try_for_each(|x| flatten(name, x, out))?,
        other => return Err(bad(format!("input `{name}` holds {other}; BYTES elements are strings"))),
    }
    Ok(())
}

/// `[len: u32 LE][bytes]...`, each element UTF-8.
fn binary_strings(name: &str, mut bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(bad(format!("input `{name}`: binary data ends inside an element's length")));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(bad(format!("input `{name}`: an element of {len} bytes with {} left", rest.len())));
        }
        let (s, rest) = rest.split_at(len);
        out.push(String::from_utf8(s.to_vec()).map_err(|_| bad(format!("input `{name}`[{}] is not valid UTF-8", out.len())))?);
        bytes = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(r: &InferRequest) -> Vec<&str> {
        r.instances.texts.iter().map(String::as_str).collect()
    }

    #[test]
    fn json_tensors_with_pairs_outputs_and_an_id() {
        let body = r#"{"id": "7", "inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]},
            {"name": "text_pair", "shape": [2], "datatype": "BYTES", "data": ["c", "d"]}], "outputs": [{"name": "label"}]}"#;
        let r = parse_infer(body.as_bytes(), None, 8).unwrap();
        assert_eq!((texts(&r), r.instances.pairs.clone().unwrap()), (vec!["a", "b"], vec!["c".to_string(), "d".to_string()]));
        assert_eq!((r.id.as_deref(), r.outputs.clone()), (Some("7"), Some(vec!["label".to_string()])));
    }

    /// What tritonclient sends by default: the JSON header, then length-prefixed elements.
    #[test]
    fn binary_tensor_data_as_tritonclient_sends_it() {
        let mut data = Vec::new();
        for s in ["great film", "dull"] {
            data.extend_from_slice(&(s.len() as u32).to_le_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        let header = format!(r#"{{"inputs": [{{"name": "text", "shape": [2], "datatype": "BYTES", "parameters": {{"binary_data_size": {}}}}}]}}"#, data.len());
        let mut body = header.clone().into_bytes();
        body.extend_from_slice(&data);
        let r = parse_infer(&body, Some(&header.len().to_string()), 8).unwrap();
        assert_eq!(texts(&r), ["great film", "dull"]);
        let cut = &body[..body.len() - 2];
        let err = parse_infer(cut, Some(&header.len().to_string()), 8).unwrap_err();
        assert!(err.message().contains("claims 22 binary bytes; 20 are left"), "{}", err.message());
    }

    #[test]
    fn every_malformed_request_names_its_problem() {
        for (body, want) in [
            (r#"[]"#, "must be a JSON object"),
            (r#"{"inputs": [], "inputs": []}"#, "malformed JSON"),
            (r#"{}"#, "missing `inputs`"),
            (r#"{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}"#, "unknown input `x`"),
            (r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}"#, "texts are BYTES"),
            (r#"{"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]}]}"#, "holds 1 elements for shape [2]"),
            (r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [" "]}]}"#, "text[0] is empty"),
            (r#"{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [3]}]}"#, "BYTES elements are strings"),
            (r#"{"inputs": [{"name": "text", "shape": [2, 2], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]}"#, "[N] or [N, 1]"),
            (r#"{"inputs": [{"name": "text_pair", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}"#, "missing the input `text`"),
        ] {
            let err = parse_infer(body.as_bytes(), None, 8).unwrap_err();
            assert!(err.message().contains(want), "{body}: {}", err.message());
        }
        let many = r#"{"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": ["a", "b", "c"]}]}"#;
        assert_eq!(parse_infer(many.as_bytes(), None, 2).unwrap_err().status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        assert!(parse_infer(b"{}", Some("99"), 2).unwrap_err().message().contains("exceeds the 2-byte body"));
    }
}
