//! Finds HTML forms and their controls the way a browser builds a form data set.
//!
//! A small tag scanner, not a full HTML parser: it reads start and end tags with their
//! attributes (quoted, unquoted or bare), skips comments and the contents of `<script>`,
//! `<style>` and `<textarea>` (whose text becomes the textarea's value), decodes character
//! references in attribute values, and associates controls with forms by nesting or by the
//! `form="id"` attribute. Controls it does not model (`<select>`) are reported as such
//! instead of silently left out.

use anyhow::{bail, Context, Result};
use url::Url;

/// A form as found on a page, ready to be filled in and submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `id` attribute, if any.
    pub id: Option<String>,
    /// Where it submits to: `action` resolved against the page URL (the page itself when
    /// absent or empty).
    pub action: Url,
    /// `GET` or `POST` (upper case; anything else is treated as `GET`, like a browser).
    pub method: String,
    /// The successful controls other than submit buttons, in document order:
    /// `(name, value, type)`.
    pub fields: Vec<Field>,
    /// The submit buttons (`<button>` without a type or of type submit, `<input
    /// type=submit>`), in document order.
    pub buttons: Vec<SubmitButton>,
    /// Names of controls this scanner does not model (such as `<select>`).
    pub unsupported: Vec<String>,
}

/// One named control and its current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The control's `name`.
    pub name: String,
    /// Its value (the `value` attribute, or a textarea's text).
    pub value: String,
    /// The input type in lower case (`text`, `password`, `hidden`, …; `textarea`).
    pub kind: String,
}

/// A button that submits its form; its name and value join the data set when pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitButton {
    /// The `name` attribute, if any.
    pub name: Option<String>,
    /// The `value` attribute (empty when absent).
    pub value: String,
    /// The visible text (a `<button>`'s content, or an input's value).
    pub label: String,
}

impl Form {
    /// The current value of the field called `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }

    /// Whether the form has a field called `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }

    /// Sets the value of the (first) field called `name`, as typing into it would.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let field = self
            .fields
            .iter_mut()
            .find(|f| f.name == name)
            .with_context(|| format!("the form for {} has no field {name:?}", self.action))?;
        field.value = value.to_owned();
        Ok(())
    }

    /// The button whose name or visible label is `name_or_label`.
    pub fn button(&self, name_or_label: &str) -> Option<&SubmitButton> {
        self.buttons
            .iter()
            .find(|b| b.name.as_deref() == Some(name_or_label) || b.label.trim() == name_or_label)
    }

    /// The data set sent when submitting with `pressed` (or with no button, as pressing
    /// Enter would): every field, then the pressed button's name and value if it has a name.
    pub fn data(&self, pressed: Option<&SubmitButton>) -> Result<Vec<(String, String)>> {
        if !self.unsupported.is_empty() {
            bail!(
                "the form for {} has controls this client does not model: {:?}",
                self.action,
                self.unsupported
            );
        }
        let mut data: Vec<(String, String)> = self
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect();
        if let Some(SubmitButton {
            name: Some(name),
            value,
            ..
        }) = pressed
        {
            data.push((name.clone(), value.clone()));
        }
        Ok(data)
    }
}

/// Every form on the page at `page_url`, in document order.
pub fn find_forms(html: &str, page_url: &Url) -> Result<Vec<Form>> {
    let mut forms: Vec<Form> = Vec::new();
    // Controls with a `form="id"` attribute are placed once every form id is known.
    let mut by_id: Vec<(String, Control)> = Vec::new();
    let mut open_form: Option<usize> = None;
    let mut scanner = Scanner { html, pos: 0 };
    while let Some(tag) = scanner.next_tag() {
        match (tag.name.as_str(), tag.end) {
            ("form", false) => {
                let action = match tag.attr("action") {
                    Some(a) if !a.is_empty() => page_url
                        .join(a)
                        .with_context(|| format!("form action {a:?} on {page_url}"))?,
                    _ => page_url.clone(),
                };
                let method = match tag.attr("method").map(str::to_ascii_uppercase) {
                    Some(m) if m == "POST" => m,
                    _ => "GET".to_owned(),
                };
                forms.push(Form {
                    id: tag.attr("id").map(str::to_owned),
                    action,
                    method,
                    fields: Vec::new(),
                    buttons: Vec::new(),
                    unsupported: Vec::new(),
                });
                open_form = Some(forms.len() - 1);
            }
            ("form", true) => open_form = None,
            ("input" | "button" | "textarea" | "select", false) => {
                let text = match tag.name.as_str() {
                    "button" => strip_tags(scanner.raw_text_until("button")),
                    "textarea" => decode_entities(scanner.raw_text_until("textarea")),
                    _ => String::new(),
                };
                let Some(control) = Control::from_tag(&tag, text) else {
                    continue;
                };
                match (tag.attr("form"), open_form) {
                    (Some(id), _) => by_id.push((id.to_owned(), control)),
                    (None, Some(i)) => control.add_to(&mut forms[i]),
                    (None, None) => {}
                }
            }
            ("script" | "style", false) => {
                scanner.raw_text_until(&tag.name);
            }
            _ => {}
        }
    }
    for (id, control) in by_id {
        if let Some(form) = forms.iter_mut().find(|f| f.id.as_deref() == Some(&id)) {
            control.add_to(form);
        }
    }
    Ok(forms)
}

enum Control {
    Field(Field),
    Button(SubmitButton),
    Unsupported(String),
}

impl Control {
    fn from_tag(tag: &Tag, text: String) -> Option<Self> {
        if tag.has("disabled") {
            return None;
        }
        let name = tag.attr("name").map(str::to_owned);
        let value = tag.attr("value").unwrap_or_default().to_owned();
        match tag.name.as_str() {
            "button" => match tag.attr("type").map(str::to_ascii_lowercase).as_deref() {
                None | Some("submit") => Some(Self::Button(SubmitButton {
                    name,
                    value,
                    label: text,
                })),
                _ => None,
            },
            "textarea" => Some(Self::Field(Field {
                name: name?,
                value: text,
                kind: "textarea".to_owned(),
            })),
            "select" => Some(Self::Unsupported(name.unwrap_or_default())),
            _ => {
                let kind = tag.attr("type").unwrap_or("text").to_ascii_lowercase();
                match kind.as_str() {
                    "submit" => Some(Self::Button(SubmitButton {
                        name,
                        label: value.clone(),
                        value,
                    })),
                    "button" | "reset" | "image" | "file" => None,
                    "checkbox" | "radio" if !tag.has("checked") => None,
                    _ => Some(Self::Field(Field {
                        name: name?,
                        value: if matches!(kind.as_str(), "checkbox" | "radio")
                            && tag.attr("value").is_none()
                        {
                            "on".to_owned()
                        } else {
                            value
                        },
                        kind,
                    })),
                }
            }
        }
    }

    fn add_to(self, form: &mut Form) {
        match self {
            Self::Field(f) => form.fields.push(f),
            Self::Button(b) => form.buttons.push(b),
            Self::Unsupported(name) => form.unsupported.push(name),
        }
    }
}

struct Tag {
    name: String,
    end: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.attrs.iter().any(|(n, _)| n == name)
    }
}

struct Scanner<'a> {
    html: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn rest(&self) -> &'a str {
        &self.html[self.pos..]
    }

    /// The next start or end tag, skipping text, comments and declarations.
    fn next_tag(&mut self) -> Option<Tag> {
        loop {
            let lt = self.rest().find('<')?;
            self.pos += lt;
            let rest = self.rest();
            if rest.starts_with("<!--") {
                self.pos += rest.find("-->").map_or(rest.len(), |i| i + 3);
                continue;
            }
            if rest.starts_with("<!") || rest.starts_with("<?") {
                self.pos += rest.find('>').map_or(rest.len(), |i| i + 1);
                continue;
            }
            let end = rest.starts_with("</");
            let name_start = if end { 2 } else { 1 };
            let name_len = rest[name_start..]
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .unwrap_or(rest.len() - name_start);
            if name_len == 0 {
                // A bare `<` in text.
                self.pos += 1;
                continue;
            }
            let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
            self.pos += name_start + name_len;
            let attrs = self.attributes();
            return Some(Tag { name, end, attrs });
        }
    }

    /// Attributes up to and including the tag's closing `>`.
    fn attributes(&mut self) -> Vec<(String, String)> {
        let mut attrs = Vec::new();
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
            self.pos += rest.len() - trimmed.len();
            if trimmed.is_empty() {
                return attrs;
            }
            if trimmed.starts_with('>') {
                self.pos += 1;
                return attrs;
            }
            let name_len = trimmed
                .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
                .unwrap_or(trimmed.len())
                .max(1);
            let name = trimmed[..name_len].to_ascii_lowercase();
            self.pos += name_len;
            let after = self.rest().trim_start();
            if let Some(value_part) = after.strip_prefix('=') {
                let value_part = value_part.trim_start();
                self.pos = self.html.len() - value_part.len();
                let (raw, consumed) = match value_part.chars().next() {
                    Some(q @ ('"' | '\'')) => match value_part[1..].find(q) {
                        Some(i) => (&value_part[1..1 + i], i + 2),
                        None => (&value_part[1..], value_part.len()),
                    },
                    _ => {
                        let len = value_part
                            .find(|c: char| c.is_ascii_whitespace() || c == '>')
                            .unwrap_or(value_part.len());
                        (&value_part[..len], len)
                    }
                };
                self.pos += consumed;
                attrs.push((name, decode_entities(raw)));
            } else {
                attrs.push((name, String::new()));
            }
        }
    }

    /// The raw text up to the end tag `</name>`, consuming that end tag.
    fn raw_text_until(&mut self, name: &str) -> &'a str {
        let rest = self.rest();
        let close = format!("</{name}");
        let lower = rest.to_ascii_lowercase();
        let end = lower.find(&close).unwrap_or(rest.len());
        let text = &rest[..end];
        self.pos += end;
        let after = self.rest();
        self.pos += after.find('>').map_or(after.len(), |i| i + 1);
        text
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode_entities(
        out.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
    )
}

/// Decodes the named references templates commonly emit and numeric references.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&i| i <= 10).and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix(['#']) {
                        match hex.strip_prefix(['x', 'X']) {
                            Some(h) => u32::from_str_radix(h, 16).ok(),
                            None => hex.parse().ok(),
                        }
                    } else {
                        None
                    };
                    code.and_then(char::from_u32)
                }
            }?;
            Some((c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_buttons_and_form_attribute_association() {
        let page = Url::parse("http://127.0.0.1:1/op/interaction/abc").expect("url");
        let html = r#"<!DOCTYPE html><style>a[x="<form>"]{}</style>
            <!-- <form action="/nope"> -->
            <form id="f" action="../x?a=1&amp;b=2" method=post>
              <input type="hidden" name="prompt" value="login"/>
              <input required type=text name=login placeholder='Any login'>
              <input type="checkbox" name="remember">
              <input type="checkbox" name="terms" checked>
              <textarea name="note">a &lt; b</textarea>
              <input type="submit" value="Go">
            </form>
            <button type="submit" form="f" name="logout" value="yes"><b>Yes,</b> sign me out</button>"#;
        let forms = find_forms(html, &page).expect("forms");
        assert_eq!(forms.len(), 1);
        let form = &forms[0];
        assert_eq!(form.action.as_str(), "http://127.0.0.1:1/op/x?a=1&b=2");
        assert_eq!(form.method, "POST");
        let names: Vec<_> = form
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("prompt", "login"),
                ("login", ""),
                ("terms", "on"),
                ("note", "a < b")
            ]
        );
        let yes = form.button("Yes, sign me out").expect("button by label");
        assert_eq!(form.button("logout"), Some(yes));
        let data = form.data(Some(yes)).expect("data");
        assert_eq!(
            data.last().map(|(n, v)| (n.as_str(), v.as_str())),
            Some(("logout", "yes"))
        );
    }

    #[test]
    fn entities_and_missing_action() {
        assert_eq!(
            decode_entities("&#39;&#x2F;&amp;&unknown;&"),
            "'/&&unknown;&"
        );
        let page = Url::parse("http://127.0.0.1:1/p?q=1").expect("url");
        let forms = find_forms("<form><select name=s></select></form>", &page).expect("forms");
        assert_eq!(forms[0].action, page);
        assert_eq!(forms[0].method, "GET");
        assert!(forms[0].data(None).is_err());
    }
}
