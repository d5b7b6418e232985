//! The text of a tool's result that Charter checks as `output` actions before the agent sees
//! it: text content, embedded text resources, and `structuredContent` as JSON.

use serde_json::Value;

/// The pieces of `result` to check, each once, in order: every `text` content block, the
/// `text` of every embedded `resource` block, then `structuredContent` serialised as JSON.
/// Images, audio and binary resources carry no text and are not checked.
pub fn pieces(result: &Value) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut push = |text: String| {
        if !text.is_empty() && !pieces.contains(&text) {
            pieces.push(text);
        }
    };
    if let Some(content) = result["content"].as_array() {
        for block in content {
            match block["type"].as_str() {
                Some("text") => {
                    if let Some(text) = block["text"].as_str() {
                        push(text.to_owned());
                    }
                }
                Some("resource") => {
                    if let Some(text) = block["resource"]["text"].as_str() {
                        push(text.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(structured) = result.get("structuredContent").filter(|v| !v.is_null()) {
        push(structured.to_string());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_text_embedded_resources_and_structured_content_once_each() {
        let result = json!({
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}},
                {"type": "resource", "resource": {"uri": "file:///b", "blob": "AAAA"}},
                {"type": "text", "text": "hello"},
                {"type": "text", "text": "{\"email\":\"bob@gmail.com\"}"}
            ],
            "structuredContent": {"email": "bob@gmail.com"}
        });
        assert_eq!(
            pieces(&result),
            ["hello", "inside", "{\"email\":\"bob@gmail.com\"}"]
        );
    }

    #[test]
    fn an_empty_or_binary_result_has_nothing_to_check() {
        assert!(pieces(&json!({"content": []})).is_empty());
        assert!(pieces(&json!({"content": [{"type": "image", "data": "AA"}]})).is_empty());
        assert_eq!(
            pieces(&json!({"content": [], "structuredContent": {"n": 1}})),
            ["{\"n\":1}"]
        );
    }
}
