//! `nats.*` of the `catalogue` suite. Each run first dirties the server the same way (not
//! timed): 3 streams of 10 messages each, a durable consumer on one, a KV bucket of 5 keys (4
//! streams in all). Then:
//!
//! * `nats.clean_vs_native`: the plugin's clean() (the stream names, then every stream deleted,
//!   all requests at once) against the same reset from the test process with async-nats over a
//!   kept connection: `stream_names()`, then every `delete_stream` at once. Target ratio ≤ 1.3.
//! * `nats.clean_vs_recreate`: the same clean() against starting a new NATS fixture from the
//!   definition. Target ratio ≤ 0.05.

use async_nats::jetstream::{self, consumer, stream};
use futures_util::TryStreamExt;
use seaworthy::Fixture;
use seaworthy_benchkit::Suite;
use seaworthy_plugin::PluginHost;

/// A kept JetStream context, as a test process would hold one.
#[derive(Clone)]
struct Server {
    js: jetstream::Context,
}

impl Server {
    /// Every stream's name.
    async fn stream_names(&self) -> Vec<String> {
        self.js
            .stream_names()
            .try_collect()
            .await
            .expect("the stream names")
    }

    /// Creates the stream `config` and stores `messages` messages on `<prefix><n>`.
    async fn stream(
        &self,
        config: stream::Config,
        prefix: &str,
        messages: usize,
    ) -> stream::Stream {
        let stream = self
            .js
            .create_stream(config)
            .await
            .expect("create a stream");
        for m in 0..messages {
            self.js
                .publish(format!("{prefix}{m}"), "value".into())
                .await
                .expect("publish")
                .await
                .expect("the stream stores it");
        }
        stream
    }
}

/// Adds the `nats.*` results to `suite`.
pub fn run(suite: &mut Suite, host: &PluginHost) {
    crate::bench_plugin(suite, host, "nats", [], 60, |suite, fixture| {
        let address = fixture.container().address(4222).expect("published port");
        let client = suite
            .block_on(async_nats::connect(format!("nats://{address}")))
            .expect("a NATS client connects");
        (
            "the same reset from the test process (async-nats)",
            Server {
                // The JetStream context spawns on the runtime it is made in.
                js: suite.block_on(async { jetstream::new(client) }),
            },
        )
    });
}

impl crate::Store for Server {
    /// Writes the state every run starts from.
    async fn dirty(&self) {
        for i in 0..3 {
            let config = stream::Config {
                name: format!("ORDERS_{i}"),
                subjects: vec![format!("orders.{i}.>")],
                ..Default::default()
            };
            let stream = self.stream(config, &format!("orders.{i}."), 10).await;
            if i == 0 {
                stream
                    .create_consumer(consumer::pull::Config {
                        durable_name: Some("billing".into()),
                        ..Default::default()
                    })
                    .await
                    .expect("create a consumer");
            }
        }
        // A KV bucket is the stream `KV_<bucket>` on `$KV.<bucket>.>`, created here as the
        // stream itself: async-nats's `create_key_value` does not read the answer of the test
        // image's server (Debian's nats-server 2.9).
        let bucket = stream::Config {
            name: "KV_settings".into(),
            subjects: vec!["$KV.settings.>".into()],
            max_messages_per_subject: 1,
            allow_rollup: true,
            deny_delete: true,
            ..Default::default()
        };
        self.stream(bucket, "$KV.settings.key", 5).await;
    }

    /// What the plugin's clean() does, from the test process.
    async fn native_clean(&self) {
        let names = self.stream_names().await;
        let deletes = names.iter().map(|name| self.js.delete_stream(name));
        for deleted in futures_util::future::join_all(deletes).await {
            deleted.expect("delete a stream");
        }
    }

    /// Fails unless the server holds no stream.
    async fn assert_baseline(&self) {
        let names = self.stream_names().await;
        assert!(names.is_empty(), "streams left: {names:?}");
    }
}
