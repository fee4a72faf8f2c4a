//! Manual deliveries (a redelivery, a test event): written, then queued; if the queue
//! refuses, written off again, so nothing is left half-made.

use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRecord};

use crate::problems::{unavailable, ApiResult};
use crate::AdminApi;

impl AdminApi {
    /// Queues the deliveries; if SQS refuses, removes them again so a retry of the same
    /// call creates them afresh instead of leaving deliveries that never run.
    pub(crate) async fn send_or_undo(&self, deliveries: &[DeliveryRecord]) -> ApiResult<()> {
        let messages: Vec<DeliveryMessage> = deliveries.iter().map(DeliveryMessage::from).collect();
        if let Err(err) = self.queue.send(&messages).await {
            for delivery in deliveries {
                if let Err(undo) = self.store.delete_delivery(&delivery.id).await {
                    tracing::error!(delivery_id = %delivery.id, error = %undo, "could not undo a delivery that was not queued");
                }
            }
            return Err(unavailable(err));
        }
        Ok(())
    }
}
