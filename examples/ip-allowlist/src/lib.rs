//! ip-allowlist: a NETWORK (L4) plugin. A TCP connection is closed at once unless the
//! client's address is inside one of the configured CIDR ranges.

mod cidr;

use cidr::Cidr;
use weir::network::{Connection, ConnectionFlow, NetworkFilter};
use weir::prelude::*;

/// The plugin's `pluginConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Allowed client ranges, e.g. `["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"]`.
    /// Empty means nobody may connect: an allow-list fails closed.
    allow: Vec<Cidr>,
}

/// Each range is checked as it is read (`Cidr`); nothing spans fields.
impl Validate for Config {}

struct IpAllowlist {
    cfg: Shared<Config>,
}

impl NetworkFilter for IpAllowlist {
    fn on_new_connection(&mut self, conn: &Connection) -> Result<ConnectionFlow> {
        let source = conn.source_address()?.unwrap_or_default();
        let allowed = cidr::parse_socket_ip(&source)
            .is_some_and(|ip| self.cfg.allow.iter().any(|c| c.contains(ip)));
        if allowed {
            debug!("allowing {source}");
            Ok(ConnectionFlow::Continue)
        } else {
            info!("closing connection from {source}: not in the allow-list");
            Ok(ConnectionFlow::Close)
        }
    }
}

weir::network_plugin!(Config => |cfg| IpAllowlist { cfg });
