//! Forms: the errors of a submitted form, each next to the field that caused it. The store and
//! the id parsers name the field (`StoreError::Invalid`'s path, the API's JSON path); the form
//! shows the message beside the input of that name, and what belongs to no field above the
//! form.

use charter_store::StoreError;

use super::render::WebError;

/// Why a submitted form did nothing: errors to show with the form again (422), or a failure
/// that is no fault of the form, shown as an error page.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Shown beside the form's fields.
    Form(FormErrors),
    /// Shown as an error page.
    Page(WebError),
}

/// What was wrong with a submitted form.
#[derive(Debug, Default)]
pub(crate) struct FormErrors {
    /// Messages by field name (the form input's `name`, which may be built: `when[0].value`).
    fields: Vec<(String, String)>,
    /// What belongs to no single field.
    general: Option<String>,
}

impl FormErrors {
    /// The message of `field`, when it has one.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    /// The message that belongs to no field.
    pub(crate) fn general(&self) -> Option<&str> {
        self.general.as_deref()
    }

    /// Records `message` against `field` (the first message of a field wins).
    pub(crate) fn field(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if self.get(&field).is_none() {
            self.fields.push((field, message.into()));
        }
    }

    /// One error, beside `field`.
    pub(crate) fn one(field: impl Into<String>, message: impl Into<String>) -> FormErrors {
        let mut errors = FormErrors::default();
        errors.field(field, message);
        errors
    }

    /// One error that belongs to no field, shown above the form.
    pub(crate) fn above(message: impl Into<String>) -> FormErrors {
        FormErrors {
            fields: Vec::new(),
            general: Some(message.into()),
        }
    }

    /// [`FormErrors::from_store`] as a [`Refusal`].
    pub(crate) fn refusal(
        e: StoreError,
        fields: &[&'static str],
        conflict_field: Option<&'static str>,
    ) -> Refusal {
        match FormErrors::from_store(e, fields, conflict_field) {
            Ok(errors) => Refusal::Form(errors),
            Err(e) => Refusal::Page(e),
        }
    }

    /// The errors of a store refusal: an invalid value next to its field (when the form has
    /// one of that name, among `fields`), a duplicate next to `conflict_field`, anything else
    /// above the form. A backend failure is no form error: it is the server's (500).
    pub(crate) fn from_store(
        e: StoreError,
        fields: &[&'static str],
        conflict_field: Option<&'static str>,
    ) -> Result<FormErrors, WebError> {
        let mut errors = FormErrors::default();
        match e {
            StoreError::Invalid { path, message } => match fields.iter().find(|f| **f == path) {
                Some(field) => errors.field(*field, message),
                None => errors.general = Some(format!("{path}: {message}")),
            },
            StoreError::Conflict { message, .. } => match conflict_field {
                Some(field) => errors.field(field, message),
                None => errors.general = Some(message),
            },
            // A form carries the revision it was opened at: say what to do, not the header.
            StoreError::RevisionMismatch {
                current_revision, ..
            } => {
                errors.general = Some(format!(
                    "This draft changed since you opened this form (it is now at revision \
                     {current_revision}): nothing was saved. Reload the page to see the \
                     changes, then make yours again."
                ));
            }
            StoreError::Backend(_) | StoreError::Unavailable(_) => return Err(WebError::from(e)),
            other => errors.general = Some(other.to_string()),
        }
        Ok(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_land_next_to_their_field() {
        let invalid = StoreError::Invalid {
            path: "name".into(),
            message: "must be 1 to 200 characters".into(),
        };
        let errors = FormErrors::from_store(invalid, &["id", "name"], None).unwrap();
        assert_eq!(errors.get("name"), Some("must be 1 to 200 characters"));
        assert_eq!(errors.general(), None);
        let elsewhere = StoreError::Invalid {
            path: "rules[0]".into(),
            message: "bad".into(),
        };
        let errors = FormErrors::from_store(elsewhere, &["name"], None).unwrap();
        assert_eq!(errors.general(), Some("rules[0]: bad"));
        let duplicate = StoreError::Conflict {
            message: "agent a already exists".into(),
            current_revision: None,
        };
        let errors = FormErrors::from_store(duplicate, &[], Some("id")).unwrap();
        assert_eq!(errors.get("id"), Some("agent a already exists"));
        assert!(FormErrors::from_store(StoreError::Backend("x".into()), &[], None).is_err());
    }
}
