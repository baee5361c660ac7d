//! Stage 2, sync: `PUT /v2/vault-plus/lists/{id}/sync` for each list, so
//! Vault+ reconciles its cache with the live list; the counters it answers
//! are recorded. Skipped with `--no-sync`. A list whose sync fails is
//! noted and mirrored from the cache as it stands.

use crate::pipeline::context::Context;
use crate::pipeline::error::MirrorError;
use crate::pipeline::lists::is_fatal;
use crate::report::Stage;
use crate::store::ListRecord;

pub async fn sync_lists(
    context: &Context,
    selected: &[ListRecord],
    errors: &mut Vec<String>,
) -> Result<(), MirrorError> {
    for list in selected {
        context
            .reporter
            .on_stage(Stage::Sync, &format!("syncing list {}", list.list_id));
        match context.api.sync_list(&list.list_id).await {
            Ok(report) => {
                let counters = serde_json::to_string(&report).unwrap_or_default();
                context
                    .store
                    .record_sync(&list.list_id, &counters, crate::now_ms())?;
            }
            Err(error) if is_fatal(&error) => return Err(error.into()),
            Err(error) => {
                let text = format!("sync of list {} failed: {error}", list.list_id);
                context.reporter.on_note(&text);
                errors.push(text);
            }
        }
    }
    Ok(())
}
