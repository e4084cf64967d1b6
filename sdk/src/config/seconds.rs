//! [`Seconds`]: a bounded duration in a plugin configuration.

use serde::de::{Deserialize, Deserializer, Error as _};
use std::time::Duration;

/// A whole number of seconds in a plugin configuration, between `MIN` and `MAX`. Anything
/// else (a negative, fractional or huge number, a string) is refused when the configuration
/// is parsed, and the error names the field:
/// `invalid plugin configuration at jwks_refresh_seconds: 99999999999 is not within 1..=604800 seconds`.
/// So no period or timeout built from it overflows later arithmetic.
///
/// ```
/// use weir::config::{parse_config, Seconds};
/// #[derive(serde::Deserialize)]
/// struct Config {
///     refresh_seconds: Seconds<1, 86_400>,
/// }
/// let cfg: Config = parse_config(br#"{"refresh_seconds": 300}"#).unwrap();
/// assert_eq!(cfg.refresh_seconds.duration().as_secs(), 300);
/// let err = parse_config::<Config>(br#"{"refresh_seconds": 0}"#).err().unwrap();
/// assert!(err.to_string().contains("refresh_seconds"), "{err}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Seconds<MIN, MAX> {
    /// `secs`, if it is within `MIN..=MAX`.
    pub fn new(secs: u64) -> Option<Self> {
        (MIN..=MAX).contains(&secs).then_some(Seconds(secs))
    }

    /// The number of seconds.
    pub fn get(self) -> u64 {
        self.0
    }

    /// As a [`Duration`].
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Seconds<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = u64::deserialize(d)?;
        Seconds::new(secs)
            .ok_or_else(|| D::Error::custom(format!("{secs} is not within {MIN}..={MAX} seconds")))
    }
}
