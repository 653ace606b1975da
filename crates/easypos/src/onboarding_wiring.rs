//! Onboarding (issue 11) wired into `easypos up`: the service over the store and HSM, with
//! the terminal host told of every terminal activated or stopped, so the change holds from the
//! terminal's next message.

use crate::config::Config;
use onboarding::service::{HostDirectory, Onboarding, Settings};
use std::sync::Arc;
use store::directory::{Merchant, Terminal};

/// The host's terminal table, kept current by onboarding.
struct Host(Arc<acquirer::TerminalHandler>);

impl HostDirectory for Host {
    fn terminal_changed(&self, terminal: &Terminal, merchant: &Merchant) {
        self.0.set_terminal(
            &terminal.id,
            acquirer::TerminalRecord::new(terminal, merchant),
        );
    }

    fn key_changed(&self, name: &str) {
        self.0.forget_key(name);
    }

    fn parameters_changed(
        &self,
        terminal_id: &str,
        parameters: &acquirer::parameters::TerminalParameters,
    ) {
        self.0.set_parameters(terminal_id, parameters.clone());
    }
}

pub fn service(
    config: &Config,
    store: Arc<store::Store>,
    hsm: Arc<dyn hsm::Hsm>,
    handler: Arc<acquirer::TerminalHandler>,
    terminal_address: std::net::SocketAddr,
) -> Onboarding {
    Onboarding {
        store,
        hsm,
        clock: Arc::new(store::SystemClock),
        settings: Settings {
            acquirer: demo::ACQUIRER,
            host_address: terminal_address.to_string(),
            documents_dir: config.data_dir.join("documents"),
            activation_code_seconds: onboarding::service::ACTIVATION_CODE_SECONDS,
            cvm_limit: "300.00".into(),
        },
        host: Arc::new(Host(handler)),
        limits: Arc::default(),
    }
}
