//! hello: the smallest useful Weir plugin. It sets one response header, `x-hello`, to a
//! configured greeting.

use weir::prelude::*;

/// The plugin's `pluginConfig`. Unknown fields are rejected, so a typo cannot silently
/// fall back to the default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The value of `x-hello`; checked for CR, LF and NUL when Envoy configures the plugin.
    #[serde(default)]
    greeting: Option<HeaderValue>,
}

/// Nothing to check beyond the field types. A plugin whose fields depend on each other, or
/// that reads a secret from `vmConfig.env`, does it in `validate` (see `weir::config::Validate`).
impl Validate for Config {}

/// One value per request; the configuration is shared, not copied.
struct Hello {
    cfg: Shared<Config>,
}

impl HttpFilter for Hello {
    fn on_response_headers(&mut self, res: &mut ResponseHeaders) -> Result<Flow> {
        let greeting = self.cfg.greeting.as_deref().unwrap_or("hello from weir");
        res.set("x-hello", greeting)?;
        Ok(Flow::Continue)
    }
}

weir::http_plugin!(Config => |cfg| Hello { cfg });
