//! Built queries: WHERE clauses of only the filters given, and newest-first keyset pages.

use charter_core::TenantId;
use sqlx::{AssertSqlSafe, Pool};

use super::{Db, Result};
use crate::error::StoreError;
use crate::model::Principal;
use crate::runs::Page;

/// A WHERE clause of only the filters given, so the database can use its indexes (an
/// `($1 IS NULL OR col = $1)` form cannot). Column names come from this file only; every value
/// is bound, never spliced.
#[derive(Default)]
pub(super) struct Filters {
    clauses: Vec<String>,
    pub(super) binds: Vec<Bind>,
}

/// A value bound to a placeholder of a built query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// `sql` with `binds` bound to its placeholders, in order.
pub(super) fn bound(
    sql: String,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for bind in binds {
        query = match bind {
            Bind::Text(v) => query.bind(v),
            Bind::Int(v) => query.bind(v),
        };
    }
    query
}

impl Filters {
    pub(super) fn next(&self) -> usize {
        self.binds.len() + 1
    }

    pub(super) fn text(&mut self, clause: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.clauses
                .push(clause.replace('?', &format!("${}", self.next())));
            self.binds.push(Bind::Text(v.to_owned()));
        }
    }

    /// A clause with no value.
    pub(super) fn always(&mut self, clause: &str) {
        self.clauses.push(clause.to_owned());
    }

    pub(super) fn int(&mut self, clause: &str, value: Option<i64>) {
        if let Some(v) = value {
            self.clauses
                .push(clause.replace('?', &format!("${}", self.next())));
            self.binds.push(Bind::Int(v));
        }
    }

    /// A clause with several placeholders `?1`, `?2`, ... bound to `values` in order.
    pub(super) fn row(&mut self, clause: &str, values: Vec<Bind>) {
        let mut text = clause.to_owned();
        for (k, value) in values.into_iter().enumerate() {
            text = text.replace(&format!("?{}", k + 1), &format!("${}", self.next()));
            self.binds.push(value);
        }
        self.clauses.push(text);
    }

    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "TRUE".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }

    pub(super) fn query(
        self,
        sql: String,
    ) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
        bound(sql, self.binds)
    }
}

/// The principal's own tenant, and the one a filter names: a tenant key naming another
/// tenant matches nothing (never its own items, never a hint that the other exists).
pub(super) fn tenant_filters(f: &mut Filters, principal: &Principal, named: Option<&str>) {
    let own = principal.tenant().map(TenantId::as_str);
    f.text("tenant_id = ?", own);
    if named != own {
        f.text("tenant_id = ?", named);
    }
}

pub(super) fn bad_cursor() -> StoreError {
    StoreError::invalid("cursor", "not a cursor of this list")
}

/// `<at>~<id>` cursors of lists ordered newest first.
fn parse_cursor(cursor: &str) -> Result<(i64, String)> {
    let (at, id) = cursor.split_once('~').ok_or_else(bad_cursor)?;
    Ok((at.parse().map_err(|_| bad_cursor())?, id.to_owned()))
}

/// A list read newest first by (`time`, id): its table, time column, row reader and the key
/// of an item (for the next cursor).
pub(super) struct Listing<T> {
    pub(super) table: &'static str,
    pub(super) time: &'static str,
    pub(super) row: fn(&<Db as sqlx::Database>::Row) -> Result<T>,
    pub(super) key: fn(&T) -> (i64, &str),
}

/// One page of a listing, after `cursor` (`<time>~<id>`).
pub(super) async fn newest_first<T>(
    pool: &Pool<Db>,
    listing: &Listing<T>,
    mut f: Filters,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Page<T>> {
    let Listing {
        table,
        time,
        row,
        key,
    } = listing;
    let limit = limit.clamp(1, 500);
    if let Some(cursor) = cursor {
        let (at, id) = parse_cursor(cursor)?;
        f.row(
            &format!("({time} < ?1 OR ({time} = ?2 AND id < ?3))"),
            vec![Bind::Int(at), Bind::Int(at), Bind::Text(id)],
        );
    }
    let sql = format!(
        "SELECT * FROM {table} WHERE {} ORDER BY {time} DESC, id DESC LIMIT {}",
        f.sql(),
        u64::from(limit) + 1
    );
    let rows = f.query(sql).fetch_all(pool).await?;
    let mut items = rows.iter().map(row).collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|item| {
            let (at, id) = key(item);
            format!("{at}~{id}")
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
