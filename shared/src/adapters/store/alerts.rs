//! Alerts: failures waiting for their digest, and each webhook's digest window.

use serde::{Deserialize, Serialize};

use super::{
    from_items, key, n, query_all, s, to_item, unless_condition_failed, Store, StoreError,
};
use crate::domain::alerts::{AlertWindow, FailureNotice, WindowState};
use crate::domain::ids::WebhookId;

/// Alerts table: `failure#<delivery id>` items and one `window` item per webhook.
const FAILURE_PREFIX: &str = "failure#";
const WINDOW_SK: &str = "window";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AlertFailureItem {
    webhook_id: WebhookId,
    sk: String,
    notice: FailureNotice,
    /// Present while the failure waits for its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<bool>,
    expires_at: i64,
}

impl AlertFailureItem {
    fn new(notice: &FailureNotice, pending: bool, expires_at: i64) -> Self {
        AlertFailureItem {
            webhook_id: notice.webhook_id.clone(),
            sk: format!("{FAILURE_PREFIX}{}", notice.delivery_id),
            notice: notice.clone(),
            pending: pending.then_some(true),
            expires_at,
        }
    }
}

impl Store {
    // ---- alerts: failures waiting for their digest, and each webhook's digest window ----

    /// Records a failure for the next digest. False when this delivery's failure is known
    /// already (a repeated notice), so no failure is counted or sent twice.
    pub async fn put_alert_failure_if_new(
        &self,
        notice: &FailureNotice,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let item = AlertFailureItem::new(notice, true, expires_at);
        self.put_if_absent(&self.tables.alerts_table, to_item(&item)?, "sk")
            .await
    }

    /// The failures of a webhook not yet sent in a digest, oldest first.
    pub async fn pending_alert_failures(
        &self,
        webhook_id: &WebhookId,
    ) -> Result<Vec<FailureNotice>, StoreError> {
        let query = self
            .ddb
            .query()
            .table_name(&self.tables.alerts_table)
            .key_condition_expression("webhook_id = :w AND begins_with(sk, :f)")
            .filter_expression("attribute_exists(pending)")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":f", s(FAILURE_PREFIX))
            .consistent_read(true);
        let mut failures: Vec<FailureNotice> =
            from_items::<AlertFailureItem>(query_all(query).await?)?
                .into_iter()
                .map(|item| item.notice)
                .collect();
        failures
            .sort_by(|a, b| (&a.failed_at, &a.delivery_id).cmp(&(&b.failed_at, &b.delivery_id)));
        Ok(failures)
    }

    /// Marks failures as sent (they stay, so a repeated notice is still recognised).
    pub async fn mark_alert_failures_sent(
        &self,
        failures: &[FailureNotice],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let items = failures
            .iter()
            .map(|notice| to_item(&AlertFailureItem::new(notice, false, expires_at)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(&self.tables.alerts_table, items).await
    }

    pub async fn get_alert_window(
        &self,
        webhook_id: &WebhookId,
    ) -> Result<Option<AlertWindow>, StoreError> {
        self.get(
            &self.tables.alerts_table,
            key([("webhook_id", s(webhook_id)), ("sk", s(WINDOW_SK))]),
        )
        .await
    }

    /// Opens a digest window unless one is open or being sent (returns false then).
    /// `window.window_id` is new for each call: if the SDK sends the put again because an
    /// answer was lost after the window was written, the window found is this one, and the
    /// call still answers true (else no flush would ever be scheduled for it).
    pub async fn open_alert_window(&self, window: &AlertWindow) -> Result<bool, StoreError> {
        let mut item = to_item(window)?;
        item.insert("sk".into(), s(WINDOW_SK));
        let put = self
            .ddb
            .put_item()
            .table_name(&self.tables.alerts_table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(sk) OR #state = :closed OR window_id = :mine",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s("closed"))
            .expression_attribute_values(":mine", s(&window.window_id));
        unless_condition_failed(put.send().await)
    }

    /// Moves window `window_id` from open to sending, claimed by the flush message
    /// `flush_id`. False if it is no longer that window or another flush claimed it. Claiming
    /// again by the same flush (its retry, or the SDK's) answers true.
    pub async fn claim_alert_window(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        flush_id: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .key("webhook_id", s(webhook_id))
            .key("sk", s(WINDOW_SK))
            .condition_expression("window_id = :w AND (#state = :open OR claimed_by = :me)")
            .update_expression("SET #state = :sending, claimed_by = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(window_id))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":me", s(flush_id));
        unless_condition_failed(update.send().await)
    }

    /// Takes over a window stuck `sending` (its flush message is gone): opens it again, due
    /// `now` and claimed by nobody, unless someone else did first (returns false then), so one
    /// taker alone schedules the next flush. The taker's `token` (new for each call) makes
    /// the SDK's retry of a write that went through answer true too.
    pub async fn take_over_alert_window(
        &self,
        window: &AlertWindow,
        now: i64,
        token: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .key("webhook_id", s(&window.webhook_id))
            .key("sk", s(WINDOW_SK))
            .condition_expression(
                "window_id = :w AND ((#state = :sending AND due_at = :seen) OR taken_by = :token)",
            )
            .update_expression(
                "SET #state = :open, due_at = :now, taken_by = :token REMOVE claimed_by",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(&window.window_id))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":seen", n(window.due_at))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":token", s(token));
        unless_condition_failed(update.send().await)
    }

    /// Closes window `window_id`, recording when its digest went out.
    pub async fn close_alert_window(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        sent_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.set_window_state(webhook_id, window_id, WindowState::Closed, sent_at)
            .await
    }

    async fn set_window_state(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        state: WindowState,
        sent_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let state = match state {
            WindowState::Open => "open",
            WindowState::Sending => "sending",
            WindowState::Closed => "closed",
        };
        let mut update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .key("webhook_id", s(webhook_id))
            .key("sk", s(WINDOW_SK))
            .condition_expression("window_id = :w")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(window_id))
            .expression_attribute_values(":s", s(state));
        update = match sent_at {
            Some(at) => update
                .update_expression("SET #state = :s, last_email_at = :at")
                .expression_attribute_values(":at", n(at)),
            None => update.update_expression("SET #state = :s"),
        };
        unless_condition_failed(update.send().await)
    }
}
