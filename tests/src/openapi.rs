//! The API document, put together from the code: admin-api's frame, fanout's ingest routes and
//! admin-api's routes, feature by feature (each described beside its handlers). `make
//! openapi` writes it to `functions/admin-api/openapi.json`, which admin-api serves; a test
//! fails while that file is not what this derives.

use serde_json::{Map, Value};
use utoipa::OpenApi;

/// Where the document is kept (relative to the repository root).
pub const DOCUMENT_PATH: &str = "functions/admin-api/openapi.json";

/// The document as JSON.
pub fn document() -> Value {
    let mut document = admin_api::openapi::Frame::openapi();
    document.merge(fanout::openapi::IngestRoutes::openapi());
    document.merge(admin_api::openapi::admin_routes());
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    flatten_all_of(&mut document);
    hoist_optional_ref_descriptions(&mut document);
    unwrap_descriptions(&mut document);
    camel_case_links(&mut document);
    document
}

/// The document as `openapi.json` holds it.
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// A type with a `#[serde(flatten)]` field derives as `allOf` of its parts, and `allOf` of
/// closed objects (`additionalProperties: false`) accepts nothing: each part refuses the
/// other's properties. So each component schema that is `allOf` of objects becomes the one
/// object they describe together, closed when the types it flattens are (utoipa drops the
/// type's own `deny_unknown_fields` from an `allOf`, so its inline part never says).
fn flatten_all_of(document: &mut Value) {
    let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    for (name, schema) in &schemas {
        let Some(written) = schema["allOf"].as_array() else {
            continue;
        };
        // Each part as written (a `$ref` to a flattened type, or the type's own fields) and
        // the object it describes.
        let parts: Option<Vec<(bool, &Map<String, Value>)>> = written
            .iter()
            .map(|part| {
                let object = resolved(&schemas, part).as_object()?;
                let is_object = object.get("type") == Some(&"object".into());
                is_object.then_some((part.get("$ref").is_some(), object))
            })
            .collect();
        let Some(parts) = parts else {
            continue;
        };
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut closed = true;
        for (flattened, part) in parts {
            if flattened {
                closed &= part.get("additionalProperties") == Some(&Value::Bool(false));
            }
            if let Some(own) = part.get("properties").and_then(Value::as_object) {
                properties.extend(own.clone());
            }
            required.extend(
                part.get("required")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        let mut object = Map::new();
        object.insert("type".into(), "object".into());
        if let Some(description) = schema.get("description") {
            object.insert("description".into(), description.clone());
        }
        object.insert("properties".into(), Value::Object(properties));
        object.insert("required".into(), Value::Array(required));
        if closed {
            object.insert("additionalProperties".into(), Value::Bool(false));
        }
        document["components"]["schemas"][name] = Value::Object(object);
    }
}

/// An optional field of a component type derives as `oneOf: [{"type": "null"}, {"$ref": …,
/// "description": …}]`: the field's doc comment lands beside the `$ref`, though it describes
/// the field (null included), so it moves up to the field.
fn hoist_optional_ref_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if !map.contains_key("description") {
                if let Some(description) = take_optional_ref_description(map) {
                    map.insert("description".into(), description);
                }
            }
            map.values_mut().for_each(hoist_optional_ref_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(hoist_optional_ref_descriptions),
        _ => {}
    }
}

/// The description beside the `$ref` of `schema`'s `oneOf: [null, $ref]`, taken out.
fn take_optional_ref_description(schema: &mut Map<String, Value>) -> Option<Value> {
    let items = schema.get_mut("oneOf")?.as_array_mut()?;
    if items.len() != 2 || !items.contains(&serde_json::json!({"type": "null"})) {
        return None;
    }
    items
        .iter_mut()
        .find(|item| item.get("$ref").is_some())?
        .as_object_mut()?
        .remove("description")
}

/// Descriptions come from doc comments, wrapped at 100 columns. In Markdown a line break
/// inside a paragraph is a space, so it is written as one; paragraphs, list items and
/// headings keep their own lines.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => *text = unwrapped(text),
                    _ => unwrap_descriptions(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

fn unwrapped(text: &str) -> String {
    let starts_a_block = |line: &str| {
        let line = line.trim_start();
        line.is_empty()
            || line.starts_with("- ")
            || line.starts_with("* ")
            || line.starts_with('#')
            // In CommonMark only a list starting at 1 may interrupt a paragraph: "a\n400. The"
            // is one paragraph.
            || line.starts_with("1. ")
    };
    // A heading is a line of its own; a blank line ends a paragraph.
    let joins =
        |previous: &str| !previous.trim().is_empty() && !previous.trim_start().starts_with('#');
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<&str> = None;
    for line in text.lines() {
        match previous {
            None => out.push_str(line),
            Some(p) if joins(p) && !starts_a_block(line) => {
                out.push(' ');
                out.push_str(line.trim_start());
            }
            Some(_) => {
                out.push('\n');
                out.push_str(line);
            }
        }
        previous = Some(line);
    }
    out
}

/// utoipa 5's `Link` is written with its Rust field names (`operation_id`, fixed in utoipa 6),
/// which OpenAPI tools do not read, so a link would lead nowhere: its fields get their
/// OpenAPI names (`operationId`, `operationRef`, `requestBody`).
fn camel_case_links(document: &mut Value) {
    let Some(document) = document.as_object_mut() else {
        return;
    };
    // Each operation's responses, and the shared ones.
    let mut responses = Vec::new();
    for (key, value) in document.iter_mut() {
        match key.as_str() {
            "paths" => responses.extend(
                value
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|paths| paths.values_mut())
                    .filter_map(Value::as_object_mut)
                    .flat_map(|item| item.values_mut())
                    .filter_map(|operation| operation.get_mut("responses")),
            ),
            "components" => responses.extend(value.get_mut("responses")),
            _ => {}
        }
    }
    let links = responses
        .into_iter()
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links"))
        .filter_map(Value::as_object_mut)
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    let openapi_name = |field: String| match field.as_str() {
        "operation_id" => "operationId".to_owned(),
        "operation_ref" => "operationRef".to_owned(),
        "request_body" => "requestBody".to_owned(),
        _ => field,
    };
    for link in links {
        // Rebuilt rather than renamed in place, so the fields keep their order.
        *link = std::mem::take(link)
            .into_iter()
            .map(|(field, value)| (openapi_name(field), value))
            .collect();
    }
}

/// `schema`, or the component its `$ref` names.
fn resolved<'a>(schemas: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => reference
            .strip_prefix("#/components/schemas/")
            .and_then(|name| schemas.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `make openapi` after a change to a route or a type the document describes; the diff
    /// of `openapi.json` then shows what the change did to the API.
    #[test]
    fn the_document_in_the_repository_is_the_one_the_code_derives() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(DOCUMENT_PATH);
        let kept = std::fs::read_to_string(&path).expect("openapi.json");
        let start = |line: &str| line.chars().take(120).collect::<String>();
        let derived = text();
        if kept != derived {
            let line = kept
                .lines()
                .zip(derived.lines())
                .position(|(k, d)| k != d)
                .unwrap_or(kept.lines().count().min(derived.lines().count()));
            panic!(
                "{DOCUMENT_PATH} is not what the code derives (first difference at line {}: \
                 kept {:?}, derived {:?}); run `make openapi`",
                line + 1,
                start(kept.lines().nth(line).unwrap_or("")),
                start(derived.lines().nth(line).unwrap_or(""))
            );
        }
    }

    #[test]
    fn links_fields_get_their_openapi_names() {
        let link =
            json!({"operation_id": "getWebhook", "parameters": {"path.id": "$response.body#/id"}});
        let mut document = json!({
            "paths": {"/a": {"parameters": [], "post": {"responses": {"201": {"links": {"Get": link}}}}}},
            "components": {"responses": {"Made": {"links": {"Get": {"operation_ref": "#/x", "request_body": 1}}}}}
        });
        camel_case_links(&mut document);
        assert_eq!(
            document["paths"]["/a"]["post"]["responses"]["201"]["links"]["Get"],
            json!({"operationId": "getWebhook", "parameters": {"path.id": "$response.body#/id"}})
        );
        assert_eq!(
            document["components"]["responses"]["Made"]["links"]["Get"],
            json!({"operationRef": "#/x", "requestBody": 1})
        );
    }

    #[test]
    fn an_all_of_of_closed_objects_becomes_one_closed_object() {
        let mut document = json!({"components": {"schemas": {
            "Base": {"type": "object", "properties": {"id": {"type": "string"}},
                "required": ["id"], "additionalProperties": false},
            "WithSecret": {"description": "Base and a secret.", "allOf": [
                {"$ref": "#/components/schemas/Base"},
                {"type": "object", "properties": {"secret": {"type": "string"}},
                    "required": ["secret"]}]}
        }}});
        flatten_all_of(&mut document);
        assert_eq!(
            document["components"]["schemas"]["WithSecret"],
            json!({"type": "object", "description": "Base and a secret.",
                "properties": {"id": {"type": "string"}, "secret": {"type": "string"}},
                "required": ["id", "secret"], "additionalProperties": false})
        );
        assert_eq!(
            document["components"]["schemas"]["Base"]["required"],
            json!(["id"])
        );
    }

    #[test]
    fn an_optional_refs_description_is_the_fields() {
        let mut document = json!({"properties": {
            "request": {"oneOf": [{"type": "null"},
                {"$ref": "#/components/schemas/Req", "description": "What was sent."}]},
            "own": {"description": "Its own.", "oneOf": [{"type": "null"},
                {"$ref": "#/components/schemas/Req", "description": "Beside."}]},
            "either": {"oneOf": [{"$ref": "#/components/schemas/A", "description": "A."},
                {"$ref": "#/components/schemas/B"}]}
        }});
        let untouched = document["properties"]["own"].clone();
        let either = document["properties"]["either"].clone();
        hoist_optional_ref_descriptions(&mut document);
        assert_eq!(
            document["properties"]["request"],
            json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Req"}],
                "description": "What was sent."})
        );
        assert_eq!(document["properties"]["own"], untouched);
        assert_eq!(document["properties"]["either"], either);
    }

    #[test]
    fn a_line_break_inside_a_paragraph_is_a_space_and_blocks_keep_their_lines() {
        assert_eq!(
            unwrapped("Malformed request: bad JSON,\nunknown fields.\n\n## Auth\nEvery call:\n- one\n- two\n  more\n1. first\nis a\n400. Answers"),
            "Malformed request: bad JSON, unknown fields.\n\n## Auth\nEvery call:\n- one\n- two more\n1. first is a 400. Answers"
        );
    }

    #[test]
    fn an_open_flattened_type_leaves_the_object_open_and_a_non_object_all_of_is_kept() {
        let mut document = json!({"components": {"schemas": {
            "OpenBase": {"type": "object", "properties": {"a": {}}},
            "Open": {"allOf": [{"$ref": "#/components/schemas/OpenBase"},
                {"type": "object", "properties": {"b": {}}}]},
            "Strings": {"allOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}
        }}});
        let strings = document["components"]["schemas"]["Strings"].clone();
        flatten_all_of(&mut document);
        let open = &document["components"]["schemas"]["Open"];
        assert_eq!(open["properties"], json!({"a": {}, "b": {}}));
        assert_eq!(open.get("additionalProperties"), None);
        assert_eq!(document["components"]["schemas"]["Strings"], strings);
    }
}
