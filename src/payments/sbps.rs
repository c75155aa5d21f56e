//! SB Payment Service, link type (リンク型): the purchase request is a Shift_JIS form the
//! resident's browser posts to the hosted page; the result notification is a Shift_JIS form
//! posted to us and answered `OK,` or `NG,<reason>`; both carry `sps_hashcode`, the SHA-1 (hex)
//! of every field's value in the specification's order followed by the merchant's hash key.
//! Status queries and refunds use the API type (XML over HTTPS, Shift_JIS, Basic auth).
//! docs/DECISIONS.md lists what the public specification leaves open and what was chosen.

use base64::Engine;
use chrono::Utc;
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use sha1::{Digest, Sha1};

use super::provider::{
    Acknowledgement, Checkout, Notification, Order, PaymentProvider, ProviderError, Status,
};
use super::states::Outcome;
use crate::config::SbpsSettings;

/// The purchase request's fields (one-time charge), in the order the hash takes them.
pub const PURCHASE_FIELDS: [&str; 30] = [
    "pay_method",
    "merchant_id",
    "service_id",
    "cust_code",
    "sps_cust_no",
    "sps_payment_no",
    "order_id",
    "item_id",
    "pay_item_id",
    "item_name",
    "tax",
    "amount",
    "pay_type",
    "auto_charge_type",
    "service_type",
    "div_settele",
    "last_charge_month",
    "camp_type",
    "tracking_id",
    "terminal_type",
    "success_url",
    "cancel_url",
    "error_url",
    "pagecon_url",
    "free1",
    "free2",
    "free3",
    "free_csv",
    "request_date",
    "limit_second",
];

/// The result notification's fields, in the order the hash takes them.
pub const NOTIFICATION_FIELDS: [&str; 34] = [
    "pay_method",
    "merchant_id",
    "service_id",
    "cust_code",
    "sps_cust_no",
    "sps_payment_no",
    "order_id",
    "item_id",
    "pay_item_id",
    "item_name",
    "tax",
    "amount",
    "pay_type",
    "auto_charge_type",
    "service_type",
    "div_settele",
    "last_charge_month",
    "camp_type",
    "tracking_id",
    "terminal_type",
    "free1",
    "free2",
    "free3",
    "request_date",
    "res_pay_method",
    "res_result",
    "res_tracking_id",
    "res_sps_cust_no",
    "res_sps_payment_no",
    "res_payinfo_key",
    "res_payment_date",
    "res_err_code",
    "res_date",
    "limit_second",
];

/// Seconds the hosted page accepts the purchase request after `request_date`.
const LIMIT_SECOND: &str = "600";

pub struct Sbps {
    settings: SbpsSettings,
    client: reqwest::Client,
}

impl Sbps {
    pub fn new(settings: SbpsSettings) -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        Self { settings, client }
    }

    /// Sends `request` with the merchant's Basic credentials (merchant and service id, then the
    /// hash key) and decodes the Shift_JIS answer; anything but a 2xx is "unreachable".
    async fn shift_jis_answer(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<String, ProviderError> {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}{}:{}",
            self.settings.merchant_id,
            self.settings.service_id,
            self.key().expose_secret()
        ));
        let unreachable =
            |error: reqwest::Error| ProviderError::Unreachable(error.without_url().to_string());
        let response = request
            .header("authorization", format!("Basic {credentials}"))
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(ProviderError::Unreachable(format!(
                "HTTP {}",
                response.status()
            )));
        }
        let bytes = response.bytes().await.map_err(unreachable)?;
        let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
        Ok(text.into_owned())
    }

    fn key(&self) -> &SecretString {
        &self.settings.hash_key
    }

    /// An API-type call. `group` is a nested element (`pay_option_manage`) with its children,
    /// placed before `request_date`; the hash takes every leaf value in document order.
    async fn api_call(
        &self,
        function_id: &str,
        elements: &[(&str, String)],
        group: Option<(&str, &[(&str, String)])>,
    ) -> Result<String, ProviderError> {
        let request_date = request_date();
        let mut values: Vec<&str> = elements.iter().map(|(_, value)| value.as_str()).collect();
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n<sps-api-request id=\"{}\">",
            escape(function_id)
        );
        for (name, value) in elements {
            xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        }
        if let Some((outer, children)) = group {
            xml.push_str(&format!("<{outer}>"));
            for (name, value) in children {
                xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
                values.push(value);
            }
            xml.push_str(&format!("</{outer}>"));
        }
        xml.push_str(&format!("<request_date>{request_date}</request_date>"));
        values.push(&request_date);
        let hashcode = hashcode(&values, self.key());
        xml.push_str(&format!(
            "<sps_hashcode>{hashcode}</sps_hashcode></sps-api-request>"
        ));
        let request = self
            .client
            .post(&self.settings.api_url)
            .header("content-type", "text/xml; charset=Shift_JIS")
            .body(shift_jis(&xml));
        let text = self.shift_jis_answer(request).await?;
        if element(&text, "res_result").as_deref() != Some("OK") {
            return Err(ProviderError::Refused(
                element(&text, "res_err_code").unwrap_or_else(|| "unknown".to_owned()),
            ));
        }
        Ok(text)
    }
}

impl PaymentProvider for Sbps {
    fn name(&self) -> &'static str {
        "sbps"
    }

    fn checkout(&self, order: &Order) -> Checkout {
        let settings = &self.settings;
        let value = |field: &str| -> String {
            match field {
                "merchant_id" => settings.merchant_id.clone(),
                "service_id" => settings.service_id.clone(),
                "cust_code" => order.customer_code.clone(),
                "order_id" => order.order_id.clone(),
                "item_id" => "fee".to_owned(),
                "item_name" => order.item_name.chars().take(40).collect(),
                "amount" => order.amount_yen.to_string(),
                // One-time charge, no tax line (fees are not taxed).
                "pay_type" => "0".to_owned(),
                "service_type" => "0".to_owned(),
                "terminal_type" => "0".to_owned(),
                "success_url" | "cancel_url" | "error_url" => order.return_url.clone(),
                "pagecon_url" => order.notify_url.clone(),
                "limit_second" => LIMIT_SECOND.to_owned(),
                _ => String::new(),
            }
        };
        let mut fields: Vec<(String, String)> = PURCHASE_FIELDS
            .iter()
            .map(|field| ((*field).to_owned(), value(field)))
            .collect();
        for (name, value) in &mut fields {
            if name == "request_date" {
                *value = request_date();
            }
        }
        let values: Vec<&str> = fields.iter().map(|(_, value)| value.as_str()).collect();
        let hashcode = hashcode(&values, self.key());
        fields.push(("sps_hashcode".to_owned(), hashcode));
        Checkout {
            action: settings.purchase_url.clone(),
            method: "POST",
            charset: "Shift_JIS",
            fields,
        }
    }

    fn verify_notification(&self, body: &[u8]) -> Result<Notification, ProviderError> {
        let fields = parse_form(body);
        let get = |name: &str| -> &str {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map_or("", |(_, value)| value.as_str())
        };
        let values: Vec<&str> = NOTIFICATION_FIELDS.iter().map(|name| get(name)).collect();
        let expected = hashcode(&values, self.key());
        if !constant_time_eq(
            expected.as_bytes(),
            get("sps_hashcode").to_lowercase().as_bytes(),
        ) {
            return Err(ProviderError::BadSignature);
        }
        if get("merchant_id") != self.settings.merchant_id
            || get("service_id") != self.settings.service_id
        {
            return Err(ProviderError::Malformed(
                "another merchant's notification".to_owned(),
            ));
        }
        let outcome = match get("res_result") {
            "OK" => Outcome::Succeeded,
            "NG" => Outcome::Failed,
            "CR" | "CN" => Outcome::Cancelled,
            other => {
                return Err(ProviderError::Malformed(format!(
                    "unknown res_result `{other}`"
                )));
            }
        };
        let order_id = get("order_id");
        if order_id.is_empty() {
            return Err(ProviderError::Malformed("no order_id".to_owned()));
        }
        let reference = get("res_tracking_id");
        Ok(Notification {
            event_id: format!(
                "{order_id}:{}:{reference}:{}",
                get("res_result"),
                get("res_date")
            ),
            order_id: order_id.to_owned(),
            outcome,
            provider_reference: (!reference.is_empty()).then(|| reference.to_owned()),
            amount_yen: get("amount").parse().ok(),
        })
    }

    fn acknowledge(&self, accepted: bool) -> Acknowledgement {
        Acknowledgement {
            content_type: "text/plain; charset=Shift_JIS",
            body: if accepted {
                b"OK,".to_vec()
            } else {
                b"NG,verification failed".to_vec()
            },
        }
    }

    fn query<'a>(
        &'a self,
        order_id: &'a str,
        provider_reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Status, ProviderError>> {
        Box::pin(async move {
            let text = self
                .api_call(
                    &self.settings.query_function_id,
                    &[
                        ("merchant_id", self.settings.merchant_id.clone()),
                        ("service_id", self.settings.service_id.clone()),
                        (
                            "tracking_id",
                            provider_reference.unwrap_or_default().to_owned(),
                        ),
                        ("order_id", order_id.to_owned()),
                    ],
                    None,
                )
                .await?;
            let outcome = match element(&text, "res_status").as_deref() {
                Some("0") => Outcome::Succeeded,
                Some("1") => Outcome::Failed,
                Some("2") => Outcome::Pending,
                Some("3") => Outcome::Cancelled,
                Some("4") => Outcome::Expired,
                other => {
                    return Err(ProviderError::Malformed(format!(
                        "unknown res_status {other:?}"
                    )));
                }
            };
            Ok(Status {
                outcome,
                provider_reference: element(&text, "res_tracking_id").filter(|id| !id.is_empty()),
            })
        })
    }

    fn refund<'a>(
        &'a self,
        order_id: &'a str,
        provider_reference: Option<&'a str>,
        amount_yen: i64,
        whole: bool,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let elements = [
                ("merchant_id", self.settings.merchant_id.clone()),
                ("service_id", self.settings.service_id.clone()),
                (
                    "tracking_id",
                    provider_reference.unwrap_or_default().to_owned(),
                ),
                ("order_id", order_id.to_owned()),
            ];
            // 取消返金要求 takes back the whole capture; 部分返金要求 names the amount under
            // pay_option_manage.
            let amount = [("amount", amount_yen.to_string())];
            let text = if whole {
                self.api_call(&self.settings.refund_function_id, &elements, None)
                    .await?
            } else {
                self.api_call(
                    &self.settings.partial_refund_function_id,
                    &elements,
                    Some(("pay_option_manage", &amount)),
                )
                .await?
            };
            Ok(element(&text, "res_sps_transaction_id").unwrap_or_default())
        })
    }

    fn settlement<'a>(
        &'a self,
        date: chrono::NaiveDate,
    ) -> BoxFuture<'a, Result<Vec<super::provider::SettledSale>, ProviderError>> {
        Box::pin(self.settlement_file(date))
    }
}

impl Sbps {
    /// The settlement file of `date`: `GET settlement_url?merchant_id=…&service_id=…&date=YYYYMMDD`
    /// with the API's Basic auth; a Shift_JIS CSV whose header names the columns, of which we
    /// read `order_id`, `tracking_id` and `amount` (see docs/DECISIONS.md: our layout, to be
    /// matched to the file the contract provides).
    async fn settlement_file(
        &self,
        date: chrono::NaiveDate,
    ) -> Result<Vec<super::provider::SettledSale>, ProviderError> {
        if self.settings.settlement_url.is_empty() {
            return Err(ProviderError::Refused("no settlement_url".to_owned()));
        }
        let request = self.client.get(&self.settings.settlement_url).query(&[
            ("merchant_id", self.settings.merchant_id.as_str()),
            ("service_id", self.settings.service_id.as_str()),
            ("date", &date.format("%Y%m%d").to_string()),
        ]);
        let text = self.shift_jis_answer(request).await?;
        parse_settlement(&text)
    }
}

/// The settlement CSV: a header line, then one sale per line; no quoting (ids and amounts only).
fn parse_settlement(text: &str) -> Result<Vec<super::provider::SettledSale>, ProviderError> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| ProviderError::Malformed("empty settlement file".to_owned()))?
        .split(',')
        .map(str::trim)
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|column| *column == name)
            .ok_or_else(|| ProviderError::Malformed(format!("no `{name}` column")))
    };
    let (order, tracking, amount) = (
        column("order_id")?,
        column("tracking_id")?,
        column("amount")?,
    );
    lines
        .enumerate()
        .map(|(index, line)| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let cell = |at: usize| cells.get(at).copied().unwrap_or_default();
            let amount_yen = cell(amount).parse().map_err(|_| {
                ProviderError::Malformed(format!("line {}: amount `{}`", index + 2, cell(amount)))
            })?;
            if cell(order).is_empty() {
                return Err(ProviderError::Malformed(format!(
                    "line {}: no order_id",
                    index + 2
                )));
            }
            Ok(super::provider::SettledSale {
                order_id: cell(order).to_owned(),
                provider_reference: Some(cell(tracking).to_owned()).filter(|id| !id.is_empty()),
                amount_yen,
            })
        })
        .collect()
}

/// `yyyyMMddHHmmss` in Japan time, as the specification writes dates.
fn request_date() -> String {
    (Utc::now() + chrono::Duration::hours(9))
        .format("%Y%m%d%H%M%S")
        .to_string()
}

pub fn shift_jis(text: &str) -> Vec<u8> {
    encoding_rs::SHIFT_JIS.encode(text).0.into_owned()
}

/// SHA-1 (lower-case hex) of the values joined, then the hash key, in Shift_JIS.
pub fn hashcode(values: &[&str], key: &SecretString) -> String {
    let mut joined = values.concat();
    joined.push_str(key.expose_secret());
    hex::encode(Sha1::digest(shift_jis(&joined)))
}

/// An `application/x-www-form-urlencoded` body in Shift_JIS, decoded.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(part: &[u8]) -> String {
        let mut bytes = Vec::with_capacity(part.len());
        let mut index = 0;
        while index < part.len() {
            match part[index] {
                b'+' => bytes.push(b' '),
                b'%' if index + 2 < part.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&part[index + 1..index + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(byte) => {
                            bytes.push(byte);
                            index += 2;
                        }
                        Err(_) => bytes.push(b'%'),
                    }
                }
                byte => bytes.push(byte),
            }
            index += 1;
        }
        encoding_rs::SHIFT_JIS.decode(&bytes).0.into_owned()
    }
    body.split(|byte| *byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |byte| *byte == b'=');
            let name = decode(halves.next().unwrap_or_default());
            let value = decode(halves.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

/// The text of the first `<name>…</name>` in a flat XML answer.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha1_over_shift_jis_values_then_the_key() {
        let key = SecretString::from("key");
        let expected = hex::encode(Sha1::digest(shift_jis("a戸籍bkey")));
        assert_eq!(hashcode(&["a", "戸籍", "b"], &key), expected);
        // Shift_JIS, not UTF-8: the same text hashes differently in UTF-8.
        assert_ne!(expected, hex::encode(Sha1::digest("a戸籍bkey".as_bytes())));
    }

    #[test]
    fn a_shift_jis_form_body_is_decoded() {
        let body = b"item_name=%8C%CB%90%D0&amount=1010&empty=&res_result=OK";
        let fields = parse_form(body);
        assert_eq!(fields[0], ("item_name".to_owned(), "戸籍".to_owned()));
        assert_eq!(fields[1].1, "1010");
        assert_eq!(fields[2].1, "");
        assert_eq!(
            element("<a><res_status>2</res_status></a>", "res_status").as_deref(),
            Some("2")
        );
    }

    #[test]
    fn the_settlement_file_is_read_by_its_header() {
        let sales = parse_settlement(
            "sales_date,tracking_id,order_id,amount\n20261205,00000000000042,MDG1,1010\n\n20261205,,MDG2,450\n",
        )
        .expect("valid");
        assert_eq!(sales.len(), 2);
        assert_eq!(sales[0].order_id, "MDG1");
        assert_eq!(
            sales[0].provider_reference.as_deref(),
            Some("00000000000042")
        );
        assert_eq!(
            (sales[1].amount_yen, sales[1].provider_reference.clone()),
            (450, None)
        );
        assert!(
            parse_settlement("order_id,amount\nMDG1,10\n").is_err(),
            "no tracking_id column"
        );
        assert!(parse_settlement("order_id,tracking_id,amount\nMDG1,1,ten\n").is_err());
    }
}
