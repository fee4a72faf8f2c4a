//! A small client for the API the gateway serves, as an admin or the platform would call it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use webhooks_shared::domain::ids::WebhookId;

use crate::{eventually, unique, Harness, WAIT};

#[derive(Debug, Clone)]
pub struct Answer {
    /// What was asked, e.g. `GET /api/v1/webhooks`, for the messages of failed asserts.
    pub request: String,
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// Asserts this is an RFC 9457 problem with the given status and a useful detail.
    pub fn assert_problem(&self, status: u16) -> &Self {
        let (request, text) = (&self.request, &self.text);
        assert_eq!(
            self.status, status,
            "unexpected answer to {request}: {text}"
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "{request}: {text}"
        );
        assert_eq!(self.json["status"], status, "{request}: {text}");
        assert!(
            self.json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{request}: {text}"
        );
        assert!(self.json["type"].is_string(), "{request}: {text}");
        let detail = self.json["detail"].as_str().unwrap_or_default();
        assert!(
            detail.len() > 10,
            "detail should say what to fix: {request}: {text}"
        );
        self
    }

    pub fn detail(&self) -> &str {
        self.json["detail"].as_str().unwrap_or_default()
    }
}

/// A webhook the API created.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    /// Shown this once, at creation.
    pub secret: String,
    /// The whole answer.
    pub json: Value,
}

/// An event the ingest API accepted.
#[derive(Debug, Clone)]
pub struct Posted {
    pub id: String,
    /// How many deliveries fan-out made of it (one per active webhook subscribed).
    pub deliveries: u64,
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    admin_token: String,
    ingest_token: String,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    pub fn new() -> Self {
        let h = Harness::get();
        Api {
            base: h.gateway.clone(),
            http: reqwest::Client::new(),
            admin_token: h.admin_token.clone(),
            ingest_token: h.ingest_token.clone(),
        }
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let asked = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            request: asked,
            status,
            content_type,
            text,
            json,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let token = self.admin_token.clone();
        self.raw(
            method,
            path,
            Some(&token),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.admin(Method::GET, path, None).await
    }

    pub async fn post_event(&self, event: Value) -> Answer {
        self.post_event_bytes(event.to_string().into_bytes()).await
    }

    pub async fn post_event_bytes(&self, body: Vec<u8>) -> Answer {
        let token = self.ingest_token.clone();
        self.raw(Method::POST, "/api/v1/events", Some(&token), Some(body))
            .await
    }

    /// `POST /api/v1/events/batch` with `{"events": events}`.
    pub async fn post_events_batch(&self, events: Vec<Value>) -> Answer {
        let body = json!({ "events": events });
        self.post_events_batch_bytes(body.to_string().into_bytes())
            .await
    }

    pub async fn post_events_batch_bytes(&self, body: Vec<u8>) -> Answer {
        let token = self.ingest_token.clone();
        self.raw(
            Method::POST,
            "/api/v1/events/batch",
            Some(&token),
            Some(body),
        )
        .await
    }

    /// Creates an active webhook to `url` for `events`.
    pub async fn create_webhook(&self, name: &str, url: &str, events: &[&str]) -> Webhook {
        self.create(json!({"name": name, "url": url, "events": events, "active": true}))
            .await
    }

    /// Creates a paused webhook to `url` for `events`: nothing is delivered to it.
    pub async fn create_paused_webhook(&self, name: &str, url: &str, events: &[&str]) -> Webhook {
        self.create(json!({"name": name, "url": url, "events": events, "active": false}))
            .await
    }

    async fn create(&self, body: Value) -> Webhook {
        let answer = self
            .admin(Method::POST, "/api/v1/webhooks", Some(body))
            .await;
        assert_eq!(answer.status, 201, "create webhook: {}", answer.text);
        Webhook {
            id: answer.json["id"].as_str().expect("id").to_owned(),
            secret: answer.json["secret"].as_str().expect("secret").to_owned(),
            json: answer.json,
        }
    }

    /// An active webhook with a name no other test uses, to `url` (e.g. a receiver's) for
    /// `events`; returns its id.
    pub async fn webhook_for(&self, url: &str, events: &[&str]) -> String {
        self.create_webhook(&unique("webhook"), url, events)
            .await
            .id
    }

    /// A paused webhook with a fresh name (events other tests post reach no receiver of it);
    /// returns its id.
    pub async fn paused_webhook_for(&self, url: &str, events: &[&str]) -> WebhookId {
        WebhookId::from(
            self.create_paused_webhook(&unique("paused"), url, events)
                .await
                .id,
        )
    }

    /// One page of `GET /api/v1/webhooks` (`?limit=` and `?cursor=` when given).
    pub async fn webhooks_page(&self, limit: Option<u32>, cursor: Option<&str>) -> Answer {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(limit) = limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        let query = query.finish();
        let path = if query.is_empty() {
            "/api/v1/webhooks".to_owned()
        } else {
            format!("/api/v1/webhooks?{query}")
        };
        self.get(&path).await
    }

    /// Every webhook, page after page of `limit` (the API's default when none), following
    /// `next_cursor` until it is null; asserts each page is a 200 of at most `limit`.
    pub async fn all_webhooks(&self, limit: Option<u32>) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100_000 {
            let page = self.webhooks_page(limit, cursor.as_deref()).await;
            assert_eq!(page.status, 200, "{}: {}", page.request, page.text);
            let webhooks = page.json["webhooks"].as_array().expect("webhooks");
            assert!(
                webhooks.len() <= limit.unwrap_or(100) as usize,
                "{} webhooks on a page of {limit:?}",
                webhooks.len()
            );
            all.extend(webhooks.iter().cloned());
            match &page.json["next_cursor"] {
                Value::Null => return all,
                Value::String(next) => cursor = Some(next.clone()),
                other => panic!("next_cursor is neither a string nor null: {other}"),
            }
        }
        panic!("the webhook list did not end within 100,000 pages");
    }

    /// The webhook as the API shows it after creation (without its secret).
    pub async fn webhook(&self, webhook_id: &str) -> Answer {
        self.get(&format!("/api/v1/webhooks/{webhook_id}")).await
    }

    /// `PATCH`es the webhook with `changes`.
    pub async fn patch_webhook(&self, webhook_id: &str, changes: Value) -> Answer {
        self.admin(
            Method::PATCH,
            &format!("/api/v1/webhooks/{webhook_id}"),
            Some(changes),
        )
        .await
    }

    pub async fn delete_webhook(&self, webhook_id: &str) -> Answer {
        self.admin(
            Method::DELETE,
            &format!("/api/v1/webhooks/{webhook_id}"),
            None,
        )
        .await
    }

    /// Replaces the webhook's signing secret; the answer shows the new one, once.
    pub async fn rotate_secret(&self, webhook_id: &str) -> Answer {
        let path = format!("/api/v1/webhooks/{webhook_id}/rotate-secret");
        self.admin(Method::POST, &path, None).await
    }

    /// Asks for the webhook's failed deliveries in `window` (`{since, until}`) to be sent again.
    pub async fn recover(&self, webhook_id: &str, window: Value) -> Answer {
        let path = format!("/api/v1/webhooks/{webhook_id}/recover");
        self.admin(Method::POST, &path, Some(window)).await
    }

    /// Posts an event of `event_type` carrying `data` under a fresh id, and asserts it was
    /// accepted (202, its id echoed).
    pub async fn post(&self, event_type: &str, data: Value) -> Posted {
        let event_id = unique("evt");
        let answer = self
            .post_event(json!({"id": event_id, "type": event_type, "data": data}))
            .await;
        assert_eq!(answer.status, 202, "{}", answer.text);
        assert_eq!(answer.json["id"], event_id.as_str(), "{}", answer.text);
        Posted {
            id: event_id,
            deliveries: answer.json["deliveries"].as_u64().expect("deliveries"),
        }
    }

    pub async fn delivery(&self, webhook_id: &str, delivery_id: &str) -> Answer {
        self.get(&format!(
            "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"
        ))
        .await
    }

    /// Waits up to `timeout` until the delivery is in one of `states`, and returns it.
    pub async fn wait_for_state(
        &self,
        webhook_id: &str,
        delivery_id: &str,
        states: &[&str],
        timeout: Duration,
    ) -> Value {
        eventually(
            &format!("delivery {delivery_id} to be {states:?}"),
            timeout,
            || async {
                let answer = self.delivery(webhook_id, delivery_id).await;
                (answer.status == 200
                    && states.contains(&answer.json["state"].as_str().unwrap_or_default()))
                .then_some(answer.json)
            },
        )
        .await
    }

    /// Waits (up to [`WAIT`]) until the delivery of event `event_id` to the webhook is in one
    /// of `states`, and returns it.
    pub async fn wait_for_event(&self, webhook_id: &str, event_id: &str, states: &[&str]) -> Value {
        let delivery = crate::delivery_id(event_id, webhook_id).await;
        self.wait_for_state(webhook_id, &delivery, states, WAIT)
            .await
    }

    /// One line of the delivery log, with the request as sent and the response as received.
    pub async fn attempt(&self, webhook_id: &str, attempt_id: &str) -> Answer {
        self.get(&format!(
            "/api/v1/webhooks/{webhook_id}/attempts/{attempt_id}"
        ))
        .await
    }

    /// Asks for the attempt's delivery to be sent again.
    pub async fn redeliver(&self, webhook_id: &str, attempt_id: &str) -> Answer {
        let path = format!("/api/v1/webhooks/{webhook_id}/attempts/{attempt_id}/redeliver");
        self.admin(Method::POST, &path, None).await
    }

    /// The log lines of one event at a webhook, newest first (other tests' events of the
    /// same type may reach the same webhook).
    pub async fn attempts_of_event(&self, webhook_id: &str, event_id: &str) -> Vec<Value> {
        self.attempts(webhook_id)
            .await
            .into_iter()
            .filter(|a| a["event_id"] == event_id)
            .collect()
    }

    /// The webhook's delivery log, newest first.
    pub async fn attempts(&self, webhook_id: &str) -> Vec<Value> {
        let answer = self
            .get(&format!("/api/v1/webhooks/{webhook_id}/attempts"))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json["attempts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
