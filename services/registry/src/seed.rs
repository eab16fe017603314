//! Bulk fixtures for benchmarks: many institutions written straight into the registry's
//! own tables in large multi-row transactions, in the same shape `CreateInstitution`
//! writes them. Creating a million institutions one RPC at a time would take the whole
//! benchmark budget. Fixture rows have no audit entries; nothing else reads this module.

use mosharekat_persian::fold_for_search;
use mosharekat_platform::db::Db;
use sea_orm::{ConnectionTrait, Statement, Value};

/// Rows per statement: 14 parameters each (5,600 a statement) stays under SQLite's and
/// PostgreSQL's limits.
const BATCH: usize = 400;
/// Rows per transaction.
const TRANSACTION: usize = 20_000;

/// The national ID of fixture institution `n`: the digit `lead`, two digits of the block
/// `n / 999,999`, the serial (digits 4–9, never zero: zero is a placeholder), the block's
/// last digit, and the check digit. Unique for n < 999,999,000 and a given `lead`; the
/// bulk rows take `9`, other fixtures another.
pub fn fixture_national_id(lead: u8, n: u64) -> String {
    let (block, serial) = (n / 999_999, n % 999_999 + 1);
    let ten = format!(
        "{}{:02}{serial:06}{}",
        lead % 10,
        block / 10 % 100,
        block % 10
    );
    let d = mosharekat_persian::ids::legal_entity_check_digit(&ten).unwrap_or('0');
    format!("{ten}{d}")
}

/// Inserts institutions `from..to` (active, in `province`, working in `area`) and returns
/// their ids in insertion order.
pub async fn institutions(
    db: &Db,
    from: u64,
    to: u64,
    province: &str,
    area: mosharekat_api::common::v1::ActivityArea,
) -> anyhow::Result<Vec<String>> {
    let backend = db.backend();
    let now = db.now_micros();
    let province_key = fold_for_search(province);
    let areas = serde_json::to_string(&[area as i32])?;
    let mut ids = Vec::with_capacity((to - from) as usize);
    let mut n = from;
    while n < to {
        let txn = db.begin_write().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let end = (n + TRANSACTION as u64).min(to);
        while n < end {
            let batch_end = (n + BATCH as u64).min(end);
            let mut rows = Vec::new();
            let mut area_rows = Vec::new();
            let mut values: Vec<Value> = Vec::new();
            let mut area_values: Vec<Value> = Vec::new();
            for i in n..batch_end {
                let id = uuid::Uuid::now_v7().to_string();
                let name = format!("نهاد مردمی شماره {i}");
                let p = values.len();
                rows.push(format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, '', '', '', ${}, '[]', ${}, '', ${}, ${}, NULL, 1)",
                    p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9, p + 10, p + 11, p + 12, p + 13, p + 14
                ));
                values.extend([
                    id.clone().into(),
                    name.clone().into(),
                    fold_for_search(&name).into(),
                    crate::rules::InstitutionKind::Ngo.code().into(),
                    fixture_national_id(9, i).into(),
                    i.to_string().into(),
                    "اداره ثبت".into(),
                    province.into(),
                    province_key.clone().into(),
                    province.into(),
                    areas.clone().into(),
                    crate::store::INSTITUTION_STATE_ACTIVE.into(),
                    now.into(),
                    now.into(),
                ]);
                let q = area_values.len();
                area_rows.push(format!("(${}, ${})", q + 1, q + 2));
                area_values.extend([(area as i32).into(), id.clone().into()]);
                ids.push(id);
            }
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO institutions (id, display_name, name_key, kind, national_id, \
                     registration_number, registering_authority, province, province_key, city, \
                     address, phone, email, activity_areas, representatives, state, \
                     dissolution_reason, create_us, update_us, dissolve_us, version) VALUES {}",
                    rows.join(", ")
                ),
                values,
            ))
            .await?;
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO institution_areas (area, institution_id) VALUES {}",
                    area_rows.join(", ")
                ),
                area_values,
            ))
            .await?;
            n = batch_end;
        }
        txn.commit().await?;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_national_ids_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for n in (0..3_000)
            .chain(999_990..1_000_010)
            .chain([5_000_000, 998_999_999])
        {
            let id = fixture_national_id(9, n);
            assert_eq!(id.len(), 11);
            assert!(
                mosharekat_persian::LegalEntityId::parse(&id).is_ok(),
                "{id}"
            );
            assert!(seen.insert(id), "{n}");
        }
    }
}
