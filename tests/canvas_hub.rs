//! The canvas hub as a pure actor, driven with events and read through client outboxes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use smolcanvas::canvas::board::Board as BoardState;
use smolcanvas::canvas::hub::{Event, Hub};
use smolcanvas::canvas::{CanvasMetrics, SMALL_MESSAGE_BYTES};
use smolcanvas::limit::MessageLimit;
use smolcanvas::{CanvasConfig, Message, OutboxReceiver, outbox};

use support::*;

/// The next message in `outbox` that is not a `clientCount`.
async fn next_queued(outbox: &OutboxReceiver) -> String {
    loop {
        match bounded("a queued message", outbox.recv()).await {
            Some(Message::Text(text)) if !text.contains(r#""type":"clientCount""#) => return text.to_string(),
            Some(Message::Text(_)) => {}
            other => panic!("expected a text message in the outbox, got {other:?}"),
        }
    }
}

#[test]
fn joins_reaching_the_hub_out_of_id_order_still_get_their_sync() {
    smol::block_on(async {
        let (events, mailbox) = async_channel::bounded(16);
        let (store, _ops) = async_channel::unbounded();
        let config = CanvasConfig { sync_timeout: Duration::from_secs(60), ..Default::default() };
        let hub = Hub::new(config, BoardState::default(), mailbox, store, Arc::new(CanvasMetrics::default()));
        let hub = smol::spawn(hub.run());
        let join = |id| {
            let (tx, rx) = outbox(1 << 20);
            (Event::Join { id, outbox: tx, limit: MessageLimit::new(SMALL_MESSAGE_BYTES) }, rx)
        };
        let answer = |from, client_id: &str| Event::CanvasState { from, client_id: client_id.into(), data: png("1") };

        let (event, one) = join(1);
        events.send(event).await.expect("the hub is running");
        assert_eq!(next_queued(&one).await, canvas_state("1", ""));
        let (event, three) = join(3);
        events.send(event).await.expect("the hub is running");
        assert_eq!(next_queued(&one).await, r#"{"type":"canvasRequest","clientId":"3"}"#);
        events.send(answer(1, "3")).await.expect("the hub is running");
        assert_eq!(next_queued(&three).await, canvas_state("3", &png("1")));
        let (event, two) = join(2);
        events.send(event).await.expect("the hub is running");
        assert_eq!(next_queued(&one).await, r#"{"type":"canvasRequest","clientId":"2"}"#);
        events.send(answer(1, "2")).await.expect("the hub is running");
        assert_eq!(next_queued(&two).await, canvas_state("2", &png("1")));

        drop(events);
        bounded("the hub to stop", hub).await;
    });
}
