//! A small client for the API the gateway serves, as an admin or the platform would call it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::{eventually, Harness};

#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Answer {
    /// Asserts this is an RFC 9457 problem with the given status and a useful detail.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.json["status"], status, "{}", self.text);
        assert!(
            self.json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            self.text
        );
        assert!(self.json["type"].is_string(), "{}", self.text);
        let detail = self.json["detail"].as_str().unwrap_or_default();
        assert!(
            detail.len() > 10,
            "detail should say what to fix: {}",
            self.text
        );
        self
    }

    pub fn detail(&self) -> &str {
        self.json["detail"].as_str().unwrap_or_default()
    }
}

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

    /// Creates a webhook and returns the answer (with the one-time `secret`).
    pub async fn create_webhook(
        &self,
        name: &str,
        url: &str,
        events: &[&str],
        active: bool,
    ) -> Value {
        let answer = self
            .admin(
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"name": name, "url": url, "events": events, "active": active})),
            )
            .await;
        assert_eq!(answer.status, 201, "create webhook: {}", answer.text);
        answer.json
    }

    pub async fn delivery(&self, webhook_id: &str, delivery_id: &str) -> Answer {
        self.get(&format!(
            "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"
        ))
        .await
    }

    /// Waits until the delivery is in one of `states`, and returns it.
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
