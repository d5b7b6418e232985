//! What the store keeps, as the rest of Charter sees it.

use charter_core::{LineageId, Policy, PolicyId, Scope, Status, TenantId};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// Who is asking: the platform, or one tenant. Every tenant-owned read and write takes it, so
/// a query cannot forget the tenant filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A platform key: every tenant, and the platform's own policies.
    Platform,
    /// A tenant key: only this tenant (and reading the platform policies that govern it).
    Tenant(TenantId),
}

impl Principal {
    /// The tenant this principal is confined to, if any.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Principal::Platform => None,
            Principal::Tenant(t) => Some(t),
        }
    }

    /// Whether this principal may see a resource of `tenant` (`None`: a platform resource,
    /// which only the platform may change).
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match (self, tenant) {
            (Principal::Platform, _) => true,
            (Principal::Tenant(own), Some(t)) => own.as_str() == t,
            (Principal::Tenant(_), None) => false,
        }
    }
}

/// Who makes a change, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Actor {
    /// The key's id.
    pub key_id: String,
    /// The key's name.
    pub name: String,
}

/// A write: who, on whose behalf, and when (the server's clock; tests set it).
#[derive(Debug, Clone)]
pub struct Change {
    /// Whose authority.
    pub principal: Principal,
    /// Who, for the audit log.
    pub actor: Actor,
    /// When.
    pub at: Timestamp,
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// An agent of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Agent {
    /// Its tenant.
    pub tenant_id: String,
    /// Its id, unique in the tenant.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Who owns it.
    pub owner: Option<String>,
    /// When it was registered.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Every GET.
    Read,
    /// Creating and changing.
    Write,
    /// Starting runs and checking actions.
    Execute,
}

impl KeyScope {
    /// The scope as written.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Write => "write",
            KeyScope::Execute => "execute",
        }
    }

    /// Reads a scope.
    pub fn from_name(name: &str) -> Option<KeyScope> {
        [KeyScope::Read, KeyScope::Write, KeyScope::Execute]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// An API key as stored: never its secret, only a hash and the last four characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Its id (`key_...`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its tenant; `None` for a platform key.
    pub tenant_id: Option<String>,
    /// What it may do.
    pub scopes: Vec<KeyScope>,
    /// The last four characters of the key, for display.
    pub last4: String,
    /// Calls made with it.
    pub calls: u64,
    /// When it was last used.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// When it was created.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it was revoked.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

/// Filters of a policy list; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct PolicyFilter {
    /// Only this status (`draft`, `active`, `deprecated`).
    pub status: Option<charter_core::Status>,
    /// Only this scope type (`platform`, `tenant`, `agent`).
    pub scope_type: Option<String>,
    /// Only this tenant's.
    pub tenant_id: Option<String>,
    /// Only this agent's.
    pub agent_id: Option<String>,
    /// Names containing this text (case-insensitive).
    pub q: Option<String>,
}

/// Some versions of a lineage around one ([`crate::Store::versions_near`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionsNear {
    /// The lineage.
    pub lineage_id: LineageId,
    /// The versions shown, oldest first.
    pub items: Vec<PolicySummary>,
    /// Versions before the first shown.
    pub before: u32,
    /// Versions after the last shown.
    pub after: u32,
}

/// How to activate a draft.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activation {
    /// Activate without a validation of the current revision (recorded in the audit log).
    pub force: bool,
    /// Deprecate the lineage's other active versions in the same transaction.
    pub supersede: bool,
}

/// A policy with what the API shows beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPolicy {
    /// The policy.
    pub policy: Policy,
    /// Its tenant (`None`: platform).
    pub tenant_id: Option<String>,
    /// When its definition was last written (its creation, or the last edit of the draft).
    pub updated_at: Timestamp,
}

impl StoredPolicy {
    /// When anything of this version last changed: an edit, its activation or deprecation.
    pub fn last_changed(&self) -> Timestamp {
        let p = &self.policy;
        latest(self.updated_at, p.activated_at, p.deprecated_at)
    }
}

/// A policy as a list shows it: what names, places and dates it, without its rules
/// ([`crate::Store::policies_page`] reads no more than this for each row of a page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySummary {
    /// The policy version's id.
    pub id: PolicyId,
    /// Its lineage.
    pub lineage_id: LineageId,
    /// Its version in the lineage.
    pub version: u32,
    /// Its status.
    pub status: Status,
    /// Its name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
    /// Its tenant (`None`: platform).
    pub tenant_id: Option<String>,
    /// How many rules it has.
    pub rules: usize,
    /// When it was created (the list's order).
    pub created_at: Timestamp,
    /// When it was activated, and by which key.
    pub activated: Option<(Timestamp, String)>,
    /// When it was deprecated, and by which key.
    pub deprecated: Option<(Timestamp, String)>,
    /// When its definition was last written (its creation, or the last edit of the draft).
    pub updated_at: Timestamp,
}

impl PolicySummary {
    /// The summary of a whole policy.
    pub fn of(stored: &StoredPolicy) -> PolicySummary {
        let p = &stored.policy;
        PolicySummary {
            id: p.id.clone(),
            lineage_id: p.lineage_id.clone(),
            version: p.version,
            status: p.status,
            name: p.definition.name.clone(),
            scope: p.definition.scope.clone(),
            tenant_id: stored.tenant_id.clone(),
            rules: p.definition.rules.len(),
            created_at: p.created_at,
            activated: p.activated_at.zip(p.activated_by.clone()),
            deprecated: p.deprecated_at.zip(p.deprecated_by.clone()),
            updated_at: stored.updated_at,
        }
    }

    /// When anything of it last changed ([`StoredPolicy::last_changed`]).
    pub fn last_changed(&self) -> Timestamp {
        latest(
            self.updated_at,
            self.activated.as_ref().map(|(at, _)| *at),
            self.deprecated.as_ref().map(|(at, _)| *at),
        )
    }
}

/// The latest of a policy's edit, activation and deprecation.
fn latest(
    updated_at: Timestamp,
    activated_at: Option<Timestamp>,
    deprecated_at: Option<Timestamp>,
) -> Timestamp {
    [activated_at, deprecated_at]
        .into_iter()
        .flatten()
        .fold(updated_at, Timestamp::max)
}

/// A signed-in session of the web workspace, with its key as stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The key the session signed in with, reloaded on every read (so never a revoked one).
    pub key: ApiKey,
    /// The tenant a platform key chose to look at; `None`: all of them (and always for a
    /// tenant key, whose own tenant is the only one it sees).
    pub tenant_id: Option<String>,
    /// The synchronizer token every state-changing request of the session must carry.
    pub csrf_token: String,
    /// When the session began.
    pub created_at: Timestamp,
    /// When it ends, whatever happens.
    pub expires_at: Timestamp,
}

/// One entry of an audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in its chain, from 1.
    pub seq: u64,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The chain's tenant; `None` for the platform chain.
    pub tenant_id: Option<String>,
    /// Who.
    pub actor: Actor,
    /// What: `policy.created`, `key.revoked`, ...
    pub action: String,
    /// The policy concerned.
    pub policy_id: Option<String>,
    /// Its lineage.
    pub lineage_id: Option<String>,
    /// Its version.
    pub version: Option<u32>,
    /// Details (for edits: before and after), as stored (the hashed text).
    #[schema(value_type = Object)]
    pub details: Value,
    /// The previous entry's hash (64 zeros for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The result of verifying audit chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Verification {
    /// Every entry checked out.
    Ok {
        /// Always true.
        ok: bool,
        /// Entries checked.
        entries: u64,
    },
    /// The first entry whose hash or link is wrong.
    Broken {
        /// Always false.
        ok: bool,
        /// The chain's tenant (`None`: platform).
        tenant_id: Option<String>,
        /// The first bad entry.
        first_bad_seq: u64,
    },
}
