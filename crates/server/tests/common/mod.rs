//! The test app and the HTTP/1.1 client of `rappel-test-support`, under the names the HTTP tests
//! of this folder use. `TestApp` wraps the shared app in a type of this crate so that each test
//! file can add its own `impl TestApp` block with the requests it makes (an inherent impl must
//! live in the crate that defines the type); it derefs to the shared app for everything else.
//!
//! Each test file is its own binary and uses a different subset of these helpers, hence the
//! `dead_code` and `unused_imports` allowances.
#![allow(dead_code, unused_imports)]

use std::ops::{Deref, DerefMut};

pub use rappel_test_support::app::{START, Setup};
pub use rappel_test_support::http::{Reply, dechunk, http, parse_reply};

pub struct TestApp(rappel_test_support::app::TestApp);

impl Deref for TestApp {
    type Target = rappel_test_support::app::TestApp;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl TestApp {
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp(rappel_test_support::app::spawn_app().await)
}

pub async fn spawn_app_with(config: rappel_server::ServerConfig) -> TestApp {
    TestApp(rappel_test_support::app::spawn_app_with(config).await)
}

pub async fn spawn_app_from(setup: Setup) -> TestApp {
    TestApp(rappel_test_support::app::spawn_app_from(setup).await)
}
