//! Subscriptions, retained messages and routing: plain state, no sockets.
//!
//! Drover's subscriptions are almost all exact: every agent subscribes to its own three
//! topics, and only the controller holds a handful of wildcard filters. So exact filters
//! are found with one hash lookup per publish, and only the short list of wildcard filters
//! is matched one by one. Nothing scans every subscription.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rumqttc::mqttbytes::QoS;

use super::acl::has_wildcards;

/// Identifies one connection for the lifetime of the broker (never reused).
pub type ConnectionId = u64;

/// A published message, shared by every subscriber it goes to.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
}

/// One message to send to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub connection: ConnectionId,
    pub qos: QoS,
    /// Set only on retained messages sent because of a new subscription (MQTT 3.1.1
    /// §3.3.1.3): a message forwarded to an existing subscription never carries it.
    pub retain: bool,
    pub message: Arc<Message>,
}

#[derive(Debug)]
struct WildcardSubscription {
    filter: String,
    connection: ConnectionId,
    qos: QoS,
}

#[derive(Debug)]
struct Retained {
    message: Arc<Message>,
    qos: QoS,
}

#[derive(Debug, Default)]
pub struct Router {
    /// Topic → subscribers with their granted QoS.
    exact: HashMap<String, Vec<(ConnectionId, QoS)>>,
    wildcard: Vec<WildcardSubscription>,
    retained: HashMap<String, Retained>,
    /// The filters of each connection, to remove them when it ends.
    filters_of: HashMap<ConnectionId, Vec<String>>,
}

impl Router {
    /// Subscribes (or re-subscribes, replacing the QoS) `connection` to `filter`, which the
    /// caller has validated; returns the retained messages it matches.
    pub fn subscribe(&mut self, connection: ConnectionId, filter: &str, qos: QoS) -> Vec<Delivery> {
        let filters = self.filters_of.entry(connection).or_default();
        if !filters.iter().any(|f| f == filter) {
            filters.push(filter.to_string());
        }
        if has_wildcards(filter) {
            match self
                .wildcard
                .iter_mut()
                .find(|s| s.connection == connection && s.filter == filter)
            {
                Some(existing) => existing.qos = qos,
                None => self.wildcard.push(WildcardSubscription {
                    filter: filter.to_string(),
                    connection,
                    qos,
                }),
            }
            self.retained
                .iter()
                .filter(|(topic, _)| topic_matches(topic, filter))
                .map(|(_, r)| retained_delivery(connection, qos, r))
                .collect()
        } else {
            let subscribers = self.exact.entry(filter.to_string()).or_default();
            match subscribers.iter_mut().find(|(c, _)| *c == connection) {
                Some(existing) => existing.1 = qos,
                None => subscribers.push((connection, qos)),
            }
            self.retained
                .get(filter)
                .map(|r| retained_delivery(connection, qos, r))
                .into_iter()
                .collect()
        }
    }

    pub fn unsubscribe(&mut self, connection: ConnectionId, filter: &str) {
        if let Some(filters) = self.filters_of.get_mut(&connection) {
            filters.retain(|f| f != filter);
            if filters.is_empty() {
                self.filters_of.remove(&connection);
            }
        }
        self.remove_subscription(connection, filter);
    }

    /// Forgets every subscription of `connection`.
    pub fn remove_connection(&mut self, connection: ConnectionId) {
        for filter in self.filters_of.remove(&connection).unwrap_or_default() {
            self.remove_subscription(connection, &filter);
        }
    }

    fn remove_subscription(&mut self, connection: ConnectionId, filter: &str) {
        if has_wildcards(filter) {
            self.wildcard
                .retain(|s| !(s.connection == connection && s.filter == filter));
        } else if let Some(subscribers) = self.exact.get_mut(filter) {
            subscribers.retain(|(c, _)| *c != connection);
            if subscribers.is_empty() {
                self.exact.remove(filter);
            }
        }
    }

    /// Routes a publish on `topic` (validated: no wildcards): stores or, with an empty
    /// payload, deletes the retained message when `retain`, and returns one delivery per
    /// subscribed connection, at the lower of the publish's and the subscription's QoS
    /// (the highest if a connection has several matching subscriptions).
    pub fn publish(
        &mut self,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Vec<Delivery> {
        let message = Arc::new(Message {
            topic: topic.to_string(),
            payload,
        });
        if retain {
            if message.payload.is_empty() {
                self.retained.remove(topic);
            } else {
                self.retained.insert(
                    topic.to_string(),
                    Retained {
                        message: message.clone(),
                        qos,
                    },
                );
            }
        }
        let mut deliveries: Vec<Delivery> = Vec::new();
        let mut add = |connection: ConnectionId, granted: QoS| {
            let qos = min_qos(qos, granted);
            match deliveries.iter_mut().find(|d| d.connection == connection) {
                Some(d) => d.qos = max_qos(d.qos, qos),
                None => deliveries.push(Delivery {
                    connection,
                    qos,
                    retain: false,
                    message: message.clone(),
                }),
            }
        };
        for &(connection, granted) in self.exact.get(topic).into_iter().flatten() {
            add(connection, granted);
        }
        for s in &self.wildcard {
            if topic_matches(topic, &s.filter) {
                add(s.connection, s.qos);
            }
        }
        deliveries
    }

    /// How many retained messages are stored.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }
}

fn retained_delivery(connection: ConnectionId, granted: QoS, r: &Retained) -> Delivery {
    Delivery {
        connection,
        qos: min_qos(r.qos, granted),
        retain: true,
        message: r.message.clone(),
    }
}

pub fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) {
        a
    } else {
        b
    }
}

fn max_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) >= (b as u8) {
        a
    } else {
        b
    }
}

/// Whether `topic` matches `filter` (MQTT 3.1.1 §4.7). Topics starting with `$` are not
/// matched by a filter starting with a wildcard. Written here rather than taken from
/// rumqttc because its `matches` slices the topic's first byte, which panics on a topic
/// that starts with a multi-byte character.
pub fn topic_matches(topic: &str, filter: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(t) if f == "+" || f == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Whether `filter` is a valid MQTT 3.1.1 topic filter.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == last,
        "+" => true,
        other => !has_wildcards(other),
    })
}

/// Whether `topic` is a valid topic name to publish on.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !has_wildcards(topic) && !topic.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q0: QoS = QoS::AtMostOnce;
    const Q1: QoS = QoS::AtLeastOnce;

    fn targets(deliveries: &[Delivery]) -> Vec<(ConnectionId, QoS)> {
        let mut t: Vec<_> = deliveries.iter().map(|d| (d.connection, d.qos)).collect();
        t.sort_by_key(|(c, _)| *c);
        t
    }

    #[test]
    fn matching_table() {
        let cases = [
            ("a/b/c", "a/b/c", true),
            ("a/b/c", "a/b", false),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/+/c", true),
            ("a/b/c", "a/+", false),
            ("a/b/c", "#", true),
            ("a/b/c", "a/#", true),
            ("a", "a/#", true),
            ("a/b/c", "a/b/c/#", true),
            ("a/b/c", "+/+/+", true),
            (
                "drover/v1/nodes/pi/presence",
                "drover/v1/nodes/+/presence",
                true,
            ),
            (
                "drover/v1/nodes/pi/logs/data",
                "drover/v1/nodes/+/presence",
                false,
            ),
            ("$SYS/x", "#", false),
            ("$SYS/x", "+/x", false),
            ("$SYS/x", "$SYS/#", true),
            ("é/x", "+/x", true),
            ("é/x", "#", true),
            ("/x", "+/x", true),
            ("a//b", "a/+/b", true),
        ];
        for (topic, filter, matches) in cases {
            assert_eq!(topic_matches(topic, filter), matches, "{topic} ~ {filter}");
        }
    }

    #[test]
    fn filter_and_topic_validity() {
        for (filter, valid) in [
            ("a/b", true),
            ("a/+/b", true),
            ("#", true),
            ("a/#", true),
            ("a/#/b", false),
            ("a/b#", false),
            ("a+/b", false),
            ("", false),
            ("a\0b", false),
        ] {
            assert_eq!(valid_filter(filter), valid, "{filter:?}");
        }
        assert!(valid_topic("a/b"));
        assert!(!valid_topic("a/+"));
        assert!(!valid_topic("#"));
        assert!(!valid_topic(""));
    }

    #[test]
    fn exact_subscription_receives_only_its_topic() {
        let mut router = Router::default();
        router.subscribe(1, "drover/v1/nodes/a/desired", Q1);
        router.subscribe(2, "drover/v1/nodes/b/desired", Q1);
        let d = router.publish(
            "drover/v1/nodes/a/desired",
            Bytes::from_static(b"x"),
            Q1,
            false,
        );
        assert_eq!(targets(&d), vec![(1, Q1)]);
        assert!(!d[0].retain);
    }

    #[test]
    fn plus_and_hash_wildcards_route() {
        let mut router = Router::default();
        router.subscribe(1, "drover/v1/nodes/+/status", Q1);
        router.subscribe(2, "drover/#", Q0);
        router.subscribe(3, "other/#", Q1);
        let d = router.publish(
            "drover/v1/nodes/a/status",
            Bytes::from_static(b"x"),
            Q1,
            false,
        );
        assert_eq!(targets(&d), vec![(1, Q1), (2, Q0)]);
    }

    #[test]
    fn delivered_qos_is_the_lower_of_publish_and_grant() {
        let mut router = Router::default();
        router.subscribe(1, "t", Q1);
        router.subscribe(2, "t", Q0);
        let d = router.publish("t", Bytes::from_static(b"x"), Q0, false);
        assert_eq!(targets(&d), vec![(1, Q0), (2, Q0)]);
        let d = router.publish("t", Bytes::from_static(b"x"), Q1, false);
        assert_eq!(targets(&d), vec![(1, Q1), (2, Q0)]);
    }

    #[test]
    fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
        let mut router = Router::default();
        router.subscribe(1, "a/b", Q0);
        router.subscribe(1, "a/+", Q1);
        router.subscribe(1, "#", Q0);
        let d = router.publish("a/b", Bytes::from_static(b"x"), Q1, false);
        assert_eq!(targets(&d), vec![(1, Q1)]);
    }

    #[test]
    fn resubscribing_replaces_the_qos() {
        let mut router = Router::default();
        router.subscribe(1, "t", Q1);
        router.subscribe(1, "t", Q0);
        let d = router.publish("t", Bytes::from_static(b"x"), Q1, false);
        assert_eq!(targets(&d), vec![(1, Q0)]);
    }

    #[test]
    fn retained_message_is_delivered_on_exact_and_wildcard_subscribe() {
        let mut router = Router::default();
        router.publish(
            "drover/v1/nodes/a/desired",
            Bytes::from_static(b"d"),
            Q1,
            true,
        );
        router.publish(
            "drover/v1/nodes/b/presence",
            Bytes::from_static(b"p"),
            Q1,
            true,
        );
        let d = router.subscribe(1, "drover/v1/nodes/a/desired", Q1);
        assert_eq!(targets(&d), vec![(1, Q1)]);
        assert!(d[0].retain);
        assert_eq!(d[0].message.payload, Bytes::from_static(b"d"));
        let d = router.subscribe(2, "drover/v1/nodes/+/presence", Q0);
        assert_eq!(targets(&d), vec![(2, Q0)]);
        assert_eq!(d[0].message.topic, "drover/v1/nodes/b/presence");
        assert!(router
            .subscribe(3, "drover/v1/nodes/c/desired", Q1)
            .is_empty());
    }

    #[test]
    fn newer_retained_message_replaces_the_older() {
        let mut router = Router::default();
        router.publish("t", Bytes::from_static(b"1"), Q1, true);
        router.publish("t", Bytes::from_static(b"2"), Q1, true);
        let d = router.subscribe(1, "t", Q1);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].message.payload, Bytes::from_static(b"2"));
    }

    #[test]
    fn empty_retained_payload_clears_and_is_still_forwarded() {
        let mut router = Router::default();
        router.publish("t", Bytes::from_static(b"1"), Q1, true);
        router.subscribe(1, "t", Q1);
        let d = router.publish("t", Bytes::new(), Q1, true);
        assert_eq!(targets(&d), vec![(1, Q1)]);
        assert_eq!(router.retained_count(), 0);
        assert!(router.subscribe(2, "t", Q1).is_empty());
        assert!(router.subscribe(3, "#", Q1).is_empty());
    }

    #[test]
    fn non_retained_publish_is_not_stored() {
        let mut router = Router::default();
        router.publish("t", Bytes::from_static(b"1"), Q1, false);
        assert!(router.subscribe(1, "t", Q1).is_empty());
    }

    #[test]
    fn unsubscribe_and_remove_connection_stop_delivery() {
        let mut router = Router::default();
        router.subscribe(1, "t", Q1);
        router.subscribe(1, "#", Q1);
        router.subscribe(2, "t", Q1);
        router.unsubscribe(1, "t");
        assert_eq!(
            targets(&router.publish("t", Bytes::new(), Q1, false)),
            vec![(1, Q1), (2, Q1)]
        );
        router.remove_connection(1);
        assert_eq!(
            targets(&router.publish("t", Bytes::new(), Q1, false)),
            vec![(2, Q1)]
        );
        router.remove_connection(2);
        assert!(router.exact.is_empty());
        assert!(router.wildcard.is_empty());
        assert!(router.filters_of.is_empty());
    }
}
