//! One task per connection: CONNECT, then read, route and write until it ends.
//!
//! Memory per idle connection stays small: buffers start empty, grow to the packet at
//! hand (never beyond the packet limit) and are given back once drained. Writing never
//! blocks reading: the task writes from its own buffer as the socket takes it and stops
//! taking messages from its queue while that buffer is full, so a subscriber that does not
//! read fills only its bounded queue ([`super::Shared::deliver`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PingResp, PubAck, Publish, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck, Unsubscribe,
};
use rumqttc::mqttbytes::{Error as CodecError, Protocol, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::limits::TokenBucket;
use super::router::{min_qos, valid_filter, valid_topic, ConnectionId, Delivery};
use super::sessions::{Ending, Held};
use super::{acl, Control, Identity, Outbox, Registered, Shared};

/// CONNECT packets are small (client id, credentials, a presence as will); a client that
/// has not authenticated yet may not make the broker buffer a full-size packet.
pub const MAX_CONNECT_BYTES: usize = 64 * 1024;
/// The packet type in the high nibble of a CONNECT's first byte.
const CONNECT_PACKET_TYPE: u8 = 1;
/// Stop taking queued messages while this much waits to be written.
const OUTBUF_HIGH_WATER: usize = 64 * 1024;
/// Buffers above this are dropped once empty rather than kept for the next packet.
const KEEP_BUFFER_BYTES: usize = 4 * 1024;
/// QoS 1 messages sent and not yet acknowledged; more wait in the queue.
const MAX_INFLIGHT: usize = 256;
/// Smallest read, so that a stream of small packets is not read a few bytes at a time.
const MIN_READ: usize = 256;

/// What the bytes at the head of a read buffer hold.
#[derive(Debug)]
pub enum Framing {
    Packet(Packet),
    /// At least this many more bytes are needed.
    Incomplete(usize),
    /// The fixed header announces more than the limit.
    TooLarge(usize),
    Malformed(CodecError),
}

/// Takes the next complete packet off `buf`, or says why there is none. Never panics, on
/// any bytes.
pub fn next_packet(buf: &mut BytesMut, max_packet_bytes: usize) -> Framing {
    if buf.is_empty() {
        return Framing::Incomplete(2);
    }
    match Packet::read(buf, max_packet_bytes) {
        Ok(packet) => Framing::Packet(packet),
        Err(CodecError::InsufficientBytes(n)) => Framing::Incomplete(n),
        Err(CodecError::PayloadSizeLimitExceeded(n)) => Framing::TooLarge(n),
        Err(e) => Framing::Malformed(e),
    }
}

/// The effective idle limit: 1.5 × keep-alive (MQTT 3.1.1 §3.1.2.10), or the server's
/// maximum for a client that asked for none.
pub fn idle_timeout(keep_alive_secs: u16, max_idle: Duration) -> Duration {
    if keep_alive_secs == 0 {
        max_idle
    } else {
        Duration::from_millis(u64::from(keep_alive_secs) * 1500)
    }
}

/// The answer to a CONNECT: who the client is, or the refusal code.
pub fn admit(
    connect: &Connect,
    auth: &dyn super::Authenticator,
) -> Result<Identity, ConnectReturnCode> {
    if connect.protocol != Protocol::V4 {
        return Err(ConnectReturnCode::RefusedProtocolVersion);
    }
    let (username, password) = match &connect.login {
        Some(login) => (login.username.as_str(), login.password.as_bytes()),
        // Nothing anonymous is accepted.
        None => return Err(ConnectReturnCode::NotAuthorized),
    };
    let identity = auth
        .authenticate(username, password)
        .ok_or(ConnectReturnCode::BadUserNamePassword)?;
    if !acl::may_use_client_id(&identity, &connect.client_id) {
        return Err(ConnectReturnCode::BadClientId);
    }
    if let Some(will) = &connect.last_will {
        let will_ok = valid_topic(&will.topic)
            && will.qos != QoS::ExactlyOnce
            && acl::may_leave_will(&identity, &will.topic);
        if !will_ok {
            return Err(ConnectReturnCode::NotAuthorized);
        }
    }
    Ok(identity)
}

/// Serves one accepted connection until it ends; `deadline` is when its CONNECT must be
/// complete.
pub(super) async fn serve<S>(shared: Arc<Shared>, stream: S, deadline: Instant)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut inbuf = BytesMut::new();
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow() {
        return;
    }
    let connect = tokio::select! {
        c = tokio::time::timeout_at(deadline, read_connect(&shared, &mut reader, &mut inbuf)) => match c {
            Ok(Some(connect)) => connect,
            Ok(None) => return,
            Err(_) => {
                shared.count(|c| &c.connect_timeouts);
                return;
            }
        },
        _ = shutdown.changed() => return,
    };
    let identity = match admit(&connect, shared.auth.as_ref()) {
        Ok(identity) => identity,
        Err(code) => {
            match code {
                ConnectReturnCode::BadUserNamePassword => {
                    shared.count(|c| &c.refused_bad_credentials)
                }
                ConnectReturnCode::BadClientId => shared.count(|c| &c.refused_client_id),
                _ => shared.count(|c| &c.refused_not_authorized),
            }
            if let Some(suppressed) = shared.throttles.refused.allow(std::time::Instant::now()) {
                tracing::warn!(client_id = %connect.client_id, ?code, refused_since_last_report = suppressed, "MQTT connection refused");
            }
            refuse(&mut writer, code).await;
            return;
        }
    };

    let id: ConnectionId = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let budget = match identity {
        Identity::Controller => shared.settings.controller_outbound,
        _ => shared.settings.client_outbound,
    };
    let (sender, outbox) = mpsc::channel(budget.messages.max(1));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let control = Arc::new(Control::default());
    let registered = {
        let mut state = shared.state();
        let claimed =
            state
                .sessions
                .register(&connect.client_id, id, acl::client_id_claim(&identity));
        if let Ok(Some(older)) = claimed {
            if let Some(older) = state.connections.get(&older) {
                shared.count(|c| &c.takeovers);
                older.control.close(Ending::TakenOver);
            }
        }
        if claimed.is_ok() {
            state.connections.insert(
                id,
                Registered {
                    identity: identity.clone(),
                    client_id: connect.client_id.clone(),
                    will: connect.last_will.clone(),
                    outbox: Outbox {
                        sender,
                        queued_bytes: queued_bytes.clone(),
                        max_bytes: budget.bytes,
                    },
                    control: control.clone(),
                },
            );
        }
        claimed
    };
    if let Err(Held(_)) = registered {
        shared.count(|c| &c.refused_client_id_in_use);
        if let Some(suppressed) = shared.throttles.refused.allow(std::time::Instant::now()) {
            tracing::warn!(client_id = %connect.client_id, refused_since_last_report = suppressed, "MQTT connection refused: a live connection holds this node's client id (a second agent for the node?)");
        }
        refuse(&mut writer, ConnectReturnCode::BadClientId).await;
        return;
    }
    shared.count(|c| &c.connected);
    tracing::debug!(client_id = %connect.client_id, ?identity, "MQTT client connected");

    let rate = match identity {
        Identity::Controller => shared.settings.controller_rate,
        Identity::Node(_) => shared.settings.node_rate,
        Identity::Enrollment(_) => shared.settings.enrollment_rate,
    };
    let mut connection = Connection {
        shared: shared.clone(),
        id,
        identity,
        client_id: connect.client_id.clone(),
        outbuf: BytesMut::new(),
        pending: VecDeque::new(),
        pending_limit: budget.messages,
        inflight: 0,
        next_pkid: 0,
        bucket: TokenBucket::new(rate, std::time::Instant::now()),
        queued_bytes,
    };
    let _ = ConnAck::new(ConnectReturnCode::Success, false).write(&mut connection.outbuf);
    let idle = idle_timeout(connect.keep_alive, shared.settings.max_idle);
    let ending = connection
        .run(
            &mut reader,
            &mut writer,
            inbuf,
            outbox,
            &control,
            &mut shutdown,
            idle,
        )
        .await;
    drop(connection);
    finish(&shared, id, &connect.client_id, ending);
}

/// Answers a refused CONNECT with its CONNACK (the connection is then closed).
async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, code: ConnectReturnCode) {
    let mut out = BytesMut::new();
    if ConnAck::new(code, false).write(&mut out).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            writer.write_all(&out).await?;
            writer.flush().await
        })
        .await;
    }
}

/// Reads until a complete CONNECT; `None` (after counting why) if the client sent
/// something else or went away.
async fn read_connect<R: AsyncRead + Unpin>(
    shared: &Shared,
    reader: &mut R,
    inbuf: &mut BytesMut,
) -> Option<Connect> {
    let limit = MAX_CONNECT_BYTES.min(shared.settings.max_packet_bytes);
    loop {
        // Whatever does not start like a CONNECT (a port scan, HTTP, TLS on the plain
        // port) is refused on its first byte rather than at the connect timeout.
        if inbuf.first().is_some_and(|b| b >> 4 != CONNECT_PACKET_TYPE) {
            shared.count(|c| &c.malformed);
            return None;
        }
        match next_packet(inbuf, limit) {
            Framing::Packet(Packet::Connect(connect)) => return Some(connect),
            Framing::Packet(_) => {
                shared.count(|c| &c.malformed);
                return None;
            }
            Framing::TooLarge(_) => {
                shared.count(|c| &c.oversized);
                return None;
            }
            Framing::Malformed(_) => {
                shared.count(|c| &c.malformed);
                return None;
            }
            Framing::Incomplete(n) => {
                inbuf.reserve(n.max(MIN_READ));
                match reader.read_buf(inbuf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        }
    }
}

/// Unregisters the connection and publishes its will if it is due.
fn finish(shared: &Shared, id: ConnectionId, client_id: &str, ending: Ending) {
    let mut state = shared.state();
    state.router.remove_connection(id);
    let registered = state.connections.remove(&id);
    let will_due = state.sessions.end(client_id, id, ending);
    tracing::debug!(%client_id, ?ending, will_due, "MQTT client gone");
    if let Some(will) = registered.and_then(|r| r.will).filter(|_| will_due) {
        shared.count(|c| &c.wills_published);
        let deliveries = state
            .router
            .publish(&will.topic, will.message, will.qos, will.retain);
        shared.deliver(&state, deliveries);
    }
}

/// Writes some of `buf`, or flushes when it is empty (TLS holds records back until then).
/// `Some(n)` for bytes written, `None` for a flush.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &[u8],
) -> std::io::Result<Option<usize>> {
    if buf.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write(buf).await.map(Some)
    }
}

struct Connection {
    shared: Arc<Shared>,
    id: ConnectionId,
    identity: Identity,
    client_id: String,
    outbuf: BytesMut,
    /// Retained messages for this connection's own new subscriptions: they do not go
    /// through the queue, which a wildcard subscription's thousands of them would overflow.
    pending: VecDeque<Delivery>,
    /// Most retained messages that may wait in `pending` (the queue's message budget).
    pending_limit: usize,
    inflight: usize,
    next_pkid: u16,
    bucket: TokenBucket,
    queued_bytes: Arc<AtomicUsize>,
}

/// What handling an inbound packet decided.
enum Next {
    Continue,
    Close(Ending),
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    async fn run<R, W>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        mut inbuf: BytesMut,
        mut outbox: mpsc::Receiver<Delivery>,
        control: &Control,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        idle: Duration,
    ) -> Ending
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let max = self.shared.settings.max_packet_bytes;
        let idle_sleep = tokio::time::sleep(idle);
        tokio::pin!(idle_sleep);
        let mut throttled_until: Option<Instant> = None;
        let mut unflushed = true;
        // Bytes a CONNECT may have been followed by.
        let mut wanted = match self.process(&mut inbuf, &mut throttled_until) {
            Ok(wanted) => wanted,
            Err(ending) => return ending,
        };
        loop {
            self.fill_outbuf_from_pending();
            // Packets left unprocessed while the write buffer was full.
            if throttled_until.is_none() && !inbuf.is_empty() {
                wanted = match self.process(&mut inbuf, &mut throttled_until) {
                    Ok(wanted) => wanted,
                    Err(ending) => return ending,
                };
            }
            if inbuf.is_empty() && inbuf.capacity() > KEEP_BUFFER_BYTES {
                inbuf = BytesMut::new();
            }
            if self.outbuf.is_empty() && self.outbuf.capacity() > KEEP_BUFFER_BYTES {
                self.outbuf = BytesMut::new();
            }
            let may_take = self.outbuf.len() < OUTBUF_HIGH_WATER
                && self.inflight < MAX_INFLIGHT
                && self.pending.is_empty();
            let throttle_at = throttled_until.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                _ = control.notify.notified() => {
                    return control.ending().unwrap_or(Ending::Lost);
                }
                _ = shutdown.changed() => return Ending::Shutdown,
                written = write_or_flush(writer, &self.outbuf), if !self.outbuf.is_empty() || unflushed => match written {
                    Ok(Some(0)) | Err(_) => return Ending::Lost,
                    Ok(Some(n)) => {
                        self.outbuf.advance(n);
                        unflushed = true;
                    }
                    Ok(None) => unflushed = false,
                },
                delivery = outbox.recv(), if may_take => {
                    // The sender lives in the registry until this task unregisters.
                    let Some(delivery) = delivery else { return Ending::Lost };
                    self.encode_queued(delivery);
                    while self.outbuf.len() < OUTBUF_HIGH_WATER && self.inflight < MAX_INFLIGHT {
                        match outbox.try_recv() {
                            Ok(delivery) => self.encode_queued(delivery),
                            Err(_) => break,
                        }
                    }
                },
                // Answers (PUBACK, SUBACK, PINGRESP) go into the write buffer, so a client
                // that sends without reading is not read from either until it catches up.
                read = reader.read_buf(&mut inbuf), if throttled_until.is_none()
                    && inbuf.len() < max + 5
                    && self.outbuf.len() < OUTBUF_HIGH_WATER => {
                    match read {
                        Ok(0) | Err(_) => return Ending::Lost,
                        Ok(_) => {}
                    }
                    // Any bytes show the peer alive, also the middle of a large packet
                    // crawling over a slow link.
                    idle_sleep.as_mut().reset(Instant::now() + idle);
                    wanted = match self.process(&mut inbuf, &mut throttled_until) {
                        Ok(wanted) => wanted,
                        Err(ending) => return ending,
                    };
                },
                _ = tokio::time::sleep_until(throttle_at), if throttled_until.is_some() => {
                    throttled_until = None;
                    // Waiting for its own rate limit is not the client's silence.
                    idle_sleep.as_mut().reset(Instant::now() + idle);
                    wanted = match self.process(&mut inbuf, &mut throttled_until) {
                        Ok(wanted) => wanted,
                        Err(ending) => return ending,
                    };
                },
                _ = &mut idle_sleep => {
                    self.shared.count(|c| &c.keep_alive_timeouts);
                    return Ending::Lost;
                }
            }
            // Room for the rest of the packet being received, in one allocation.
            let room = inbuf.capacity() - inbuf.len();
            if room < wanted.max(MIN_READ) {
                inbuf.reserve(wanted.max(MIN_READ).min(max + 5 - inbuf.len().min(max + 5)));
            }
        }
    }

    /// Handles every complete packet in `inbuf` that the rate limit lets through; returns
    /// how many more bytes the next packet needs (0 when throttled).
    fn process(
        &mut self,
        inbuf: &mut BytesMut,
        throttled_until: &mut Option<Instant>,
    ) -> Result<usize, Ending> {
        let max = self.shared.settings.max_packet_bytes;
        loop {
            if inbuf.is_empty() {
                return Ok(MIN_READ);
            }
            if self.outbuf.len() >= OUTBUF_HIGH_WATER {
                return Ok(0);
            }
            // Only complete packets cost a token; a packet is taken off the buffer only
            // once it has one. `check` frames without consuming.
            match rumqttc::mqttbytes::check(inbuf.iter(), max) {
                Err(CodecError::InsufficientBytes(n)) => return Ok(n),
                Err(CodecError::PayloadSizeLimitExceeded(_)) => {
                    self.shared.count(|c| &c.oversized);
                    return Err(Ending::Lost);
                }
                Err(_) => {
                    self.shared.count(|c| &c.malformed);
                    return Err(Ending::Lost);
                }
                Ok(_) => {}
            }
            if let Err(wait) = self.bucket.take(std::time::Instant::now()) {
                self.shared.count(|c| &c.rate_limited);
                *throttled_until = Some(Instant::now() + wait);
                return Ok(0);
            }
            match next_packet(inbuf, max) {
                Framing::Packet(packet) => {
                    if let Next::Close(ending) = self.handle(packet) {
                        return Err(ending);
                    }
                }
                Framing::TooLarge(_) => {
                    self.shared.count(|c| &c.oversized);
                    return Err(Ending::Lost);
                }
                Framing::Incomplete(_) | Framing::Malformed(_) => {
                    self.shared.count(|c| &c.malformed);
                    return Err(Ending::Lost);
                }
            }
        }
    }

    fn handle(&mut self, packet: Packet) -> Next {
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish),
            Packet::PubAck(_) => {
                self.inflight = self.inflight.saturating_sub(1);
                Next::Continue
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => self.handle_unsubscribe(unsubscribe),
            Packet::PingReq => {
                let _ = PingResp.write(&mut self.outbuf);
                Next::Continue
            }
            Packet::Disconnect => Next::Close(Ending::Disconnected),
            // A second CONNECT, QoS 2 flow packets, or packets only a server sends.
            _ => {
                self.shared.count(|c| &c.malformed);
                Next::Close(Ending::Lost)
            }
        }
    }

    fn handle_publish(&mut self, publish: Publish) -> Next {
        if publish.qos == QoS::ExactlyOnce {
            self.shared.count(|c| &c.unsupported_qos);
            return Next::Close(Ending::Lost);
        }
        if !valid_topic(&publish.topic) {
            self.shared.count(|c| &c.malformed);
            return Next::Close(Ending::Lost);
        }
        if acl::may_publish(&self.identity, &publish.topic) {
            let retain = publish.retain && acl::may_retain(&self.identity);
            let mut state = self.shared.state();
            let deliveries =
                state
                    .router
                    .publish(&publish.topic, publish.payload, publish.qos, retain);
            self.shared.deliver(&state, deliveries);
        } else {
            self.shared.count(|c| &c.dropped_acl_publish);
            if let Some(suppressed) = self
                .shared
                .throttles
                .denied
                .allow(std::time::Instant::now())
            {
                tracing::warn!(client_id = %self.client_id, topic = %publish.topic, denied_since_last_report = suppressed, "publish denied by the broker's ACL, dropped");
            }
        }
        // Acknowledged also when denied, as Mosquitto does: the client learns nothing, and
        // does not retry forever.
        if publish.qos == QoS::AtLeastOnce {
            let _ = PubAck::new(publish.pkid).write(&mut self.outbuf);
        }
        Next::Continue
    }

    fn handle_subscribe(&mut self, subscribe: Subscribe) -> Next {
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut retained = Vec::new();
        {
            let mut state = self.shared.state();
            for filter in &subscribe.filters {
                if !valid_filter(&filter.path) {
                    codes.push(SubscribeReasonCode::Failure);
                } else if !acl::may_subscribe(&self.identity, &filter.path) {
                    self.shared.count(|c| &c.denied_acl_subscribe);
                    if let Some(suppressed) = self
                        .shared
                        .throttles
                        .denied
                        .allow(std::time::Instant::now())
                    {
                        tracing::warn!(client_id = %self.client_id, filter = %filter.path, denied_since_last_report = suppressed, "subscription denied by the broker's ACL");
                    }
                    codes.push(SubscribeReasonCode::Failure);
                } else {
                    let granted = min_qos(filter.qos, QoS::AtLeastOnce);
                    retained.extend(state.router.subscribe(self.id, &filter.path, granted));
                    codes.push(SubscribeReasonCode::Success(granted));
                }
            }
        }
        let _ = SubAck::new(subscribe.pkid, codes).write(&mut self.outbuf);
        self.pending.extend(retained);
        // Each entry shares its message with the retained store, but a client that keeps
        // subscribing without acknowledging would still grow the list without end.
        if self.pending.len() > self.pending_limit {
            self.shared.count(|c| &c.disconnected_slow_subscriber);
            return Next::Close(Ending::Lost);
        }
        Next::Continue
    }

    fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Next {
        {
            let mut state = self.shared.state();
            for filter in &unsubscribe.topics {
                state.router.unsubscribe(self.id, filter);
            }
        }
        let _ = UnsubAck::new(unsubscribe.pkid).write(&mut self.outbuf);
        Next::Continue
    }

    fn fill_outbuf_from_pending(&mut self) {
        while self.outbuf.len() < OUTBUF_HIGH_WATER && self.inflight < MAX_INFLIGHT {
            match self.pending.pop_front() {
                Some(delivery) => self.encode(&delivery),
                None => break,
            }
        }
    }

    fn encode_queued(&mut self, delivery: Delivery) {
        let size = delivery.message.payload.len() + delivery.message.topic.len();
        self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        self.encode(&delivery);
    }

    fn encode(&mut self, delivery: &Delivery) {
        let pkid = if delivery.qos == QoS::AtLeastOnce {
            self.inflight += 1;
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            self.next_pkid
        } else {
            0
        };
        let publish = Publish {
            dup: false,
            qos: delivery.qos,
            retain: delivery.retain,
            topic: delivery.message.topic.clone(),
            pkid,
            payload: delivery.message.payload.clone(),
        };
        if let Err(e) = publish.write(&mut self.outbuf) {
            tracing::warn!(client_id = %self.client_id, error = %e, "cannot encode a message for an MQTT client, dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;

    struct Fixed;

    impl super::super::Authenticator for Fixed {
        fn authenticate(&self, username: &str, password: &[u8]) -> Option<Identity> {
            match (username, password) {
                ("controller", b"c-secret") => Some(Identity::Controller),
                ("pi", b"pi-secret") => Some(Identity::Node("pi".into())),
                _ => None,
            }
        }
    }

    fn connect(client_id: &str, login: Option<(&str, &str)>) -> Connect {
        let mut c = Connect::new(client_id);
        if let Some((u, p)) = login {
            c.set_login(u, p);
        }
        c
    }

    #[test]
    fn admission_table() {
        use ConnectReturnCode::*;
        let will = |topic: &str| {
            let mut c = connect("drover-agent-pi", Some(("pi", "pi-secret")));
            c.last_will = Some(rumqttc::mqttbytes::v4::LastWill::new(
                topic,
                "x",
                QoS::AtLeastOnce,
                true,
            ));
            c
        };
        let mut persistent = connect("drover-agent-pi", Some(("pi", "pi-secret")));
        persistent.clean_session = false;
        let mut v5 = connect("drover-agent-pi", Some(("pi", "pi-secret")));
        v5.protocol = Protocol::V5;
        let cases = [
            (connect("drover-agent-pi", None), Err(NotAuthorized)),
            (
                connect("drover-agent-pi", Some(("pi", "wrong"))),
                Err(BadUserNamePassword),
            ),
            (
                connect("drover-agent-pi", Some(("nobody", "x"))),
                Err(BadUserNamePassword),
            ),
            (
                connect("drover-agent-pi", Some(("pi", "pi-secret"))),
                Ok(Identity::Node("pi".into())),
            ),
            (
                connect("drover-agent-other", Some(("pi", "pi-secret"))),
                Err(BadClientId),
            ),
            (
                connect("drover-controller-1", Some(("pi", "pi-secret"))),
                Err(BadClientId),
            ),
            (connect("", Some(("pi", "pi-secret"))), Err(BadClientId)),
            (
                connect("drover-controller-1", Some(("controller", "c-secret"))),
                Ok(Identity::Controller),
            ),
            (
                will("drover/v1/nodes/pi/presence"),
                Ok(Identity::Node("pi".into())),
            ),
            (will("drover/v1/nodes/other/presence"), Err(NotAuthorized)),
            (will("drover/v1/nodes/pi/status"), Err(NotAuthorized)),
            (will("drover/v1/nodes/+/presence"), Err(NotAuthorized)),
            (v5, Err(RefusedProtocolVersion)),
            // Accepted, and served as a clean session.
            (persistent, Ok(Identity::Node("pi".into()))),
        ];
        for (c, expected) in cases {
            assert_eq!(admit(&c, &Fixed), expected, "{c:?}");
        }
    }

    #[test]
    fn idle_timeout_is_one_and_a_half_keep_alives_or_the_maximum() {
        let max = Duration::from_secs(300);
        assert_eq!(idle_timeout(10, max), Duration::from_secs(15));
        assert_eq!(idle_timeout(0, max), max);
    }

    #[test]
    fn framing_waits_for_the_rest_of_a_packet() {
        let mut full = BytesMut::new();
        let mut publish = Publish::new("a/b", QoS::AtLeastOnce, vec![7u8; 300]);
        publish.pkid = 1;
        Packet::Publish(publish)
            .write(&mut full, 1 << 20)
            .map(|_| ())
            .unwrap_or_else(|e| panic!("{e}"));
        for cut in 0..full.len() {
            let mut partial = BytesMut::from(&full[..cut]);
            assert!(
                matches!(next_packet(&mut partial, 1 << 20), Framing::Incomplete(_)),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn framing_refuses_a_packet_over_the_limit_from_its_header() {
        // A PUBLISH announcing 2 MiB, of which only the header has arrived.
        let mut buf = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x80, 0x01][..]);
        assert!(matches!(
            next_packet(&mut buf, 1 << 20),
            Framing::TooLarge(_)
        ));
    }

    /// Runs a whole connection over an in-memory stream: CONNECT as node `pi`, then
    /// `after_connect`, then end of stream. Returns the broker's counters.
    fn serve_bytes(after_connect: &[u8]) -> super::super::BrokerStats {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        runtime.block_on(async {
            let shared = Arc::new(Shared::new(Default::default(), Arc::new(Fixed)));
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            let mut bytes = BytesMut::new();
            let _ = Packet::Connect(connect("drover-agent-pi", Some(("pi", "pi-secret"))))
                .write(&mut bytes, 4096);
            bytes.extend_from_slice(after_connect);
            let task = tokio::spawn(serve(
                shared.clone(),
                server,
                Instant::now() + Duration::from_secs(5),
            ));
            let _ = client.write_all(&bytes).await;
            let _ = client.shutdown().await;
            // Drain what the broker writes, so that it never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut sink)).await;
            let finished = tokio::time::timeout(Duration::from_secs(5), task).await;
            assert!(
                matches!(finished, Ok(Ok(()))),
                "the connection task ends without panicking"
            );
            assert!(shared.state().connections.is_empty(), "and unregisters");
            shared.counters.snapshot()
        })
    }

    #[test]
    fn connection_ends_cleanly_after_valid_traffic() {
        let mut bytes = BytesMut::new();
        let mut publish =
            Publish::new("drover/v1/nodes/pi/status", QoS::AtLeastOnce, vec![1u8; 10]);
        publish.pkid = 1;
        let _ = Packet::Publish(publish).write(&mut bytes, 4096);
        let _ = Packet::PingReq.write(&mut bytes, 4096);
        let _ = Packet::Disconnect.write(&mut bytes, 4096);
        let stats = serve_bytes(&bytes);
        assert_eq!((stats.connected, stats.malformed), (1, 0));
    }

    proptest! {
        #[test]
        fn connection_never_panics_on_random_bytes_after_connect(
            bytes in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            serve_bytes(&bytes);
        }

        #[test]
        fn framing_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = BytesMut::from(&bytes[..]);
            for _ in 0..64 {
                match next_packet(&mut buf, 4096) {
                    Framing::Packet(_) => continue,
                    _ => break,
                }
            }
        }

        #[test]
        fn framing_never_panics_on_mutated_packets(
            flip_at in 0usize..64,
            flip in any::<u8>(),
            cut in 0usize..80,
            kind in 0usize..4,
        ) {
            let packet = match kind {
                0 => {
                    let mut publish = Publish::new("drover/v1/nodes/pi/status", QoS::AtLeastOnce, vec![1u8; 20]);
                    publish.pkid = 9;
                    Packet::Publish(publish)
                }
                1 => {
                    let mut subscribe = Subscribe::new("drover/v1/nodes/pi/desired", QoS::AtLeastOnce);
                    subscribe.pkid = 3;
                    Packet::Subscribe(subscribe)
                }
                2 => Packet::Connect(connect("drover-agent-pi", Some(("pi", "pi-secret")))),
                _ => Packet::Unsubscribe(Unsubscribe::new("a/b")),
            };
            let mut bytes = BytesMut::new();
            prop_assert!(packet.write(&mut bytes, 4096).is_ok());
            let mut bytes = bytes.to_vec();
            if let Some(b) = bytes.get_mut(flip_at) {
                *b ^= flip;
            }
            bytes.truncate(cut.max(1));
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = next_packet(&mut buf, 4096);
        }
    }
}
