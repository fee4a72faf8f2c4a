//! Events: stored once, with the exact body every attempt sends.

use super::{n, s, to_item, Store, StoreError};
use crate::domain::ids::EventId;
use crate::domain::model::EventRecord;

impl Store {
    // ---- events ----

    /// Stores a new event. When the id exists already, returns the stored event instead.
    pub async fn put_event_if_new(
        &self,
        event: &EventRecord,
    ) -> Result<Option<EventRecord>, StoreError> {
        if self
            .put_if_absent(&self.tables.events_table, to_item(event)?, "id")
            .await?
        {
            return Ok(None);
        }
        self.get_event(&event.id).await
    }

    pub async fn mark_fanned_out(
        &self,
        event_id: &EventId,
        deliveries: u32,
    ) -> Result<(), StoreError> {
        self.ddb
            .update_item()
            .table_name(&self.tables.events_table)
            .key("id", s(event_id))
            .update_expression("SET deliveries = :n")
            .expression_attribute_values(":n", n(deliveries))
            .send()
            .await?;
        Ok(())
    }

    pub async fn get_event(&self, id: &EventId) -> Result<Option<EventRecord>, StoreError> {
        self.get_by_id(&self.tables.events_table, id.as_str()).await
    }
}
