//! [`RedisInfo`]: the answer to `INFO`, parsed.

use std::collections::BTreeMap;

/// The fields of an `INFO` answer (`redis_version`, `connected_clients`, `db0`...), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisInfo {
    fields: BTreeMap<String, String>,
}

impl RedisInfo {
    /// Parses the text `INFO` returns: `# Section` headers and `field:value` lines.
    pub fn parse(text: &str) -> Self {
        let fields = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RedisInfo { fields }
    }

    /// The value of `field`, if the answer has it.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// Every field, by name.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    /// The server version (`7.0.15`), from the `server` section.
    pub fn version(&self) -> Option<&str> {
        self.get("redis_version")
    }

    /// The major version (`7`), from the `server` section.
    pub fn major_version(&self) -> Option<u32> {
        self.version()?.split('.').next()?.parse().ok()
    }

    /// The number of keys in each database that has any (`keyspace` section): db index -> keys.
    pub fn keyspace(&self) -> BTreeMap<u32, u64> {
        self.fields
            .iter()
            .filter_map(|(k, v)| {
                let db = k.strip_prefix("db")?.parse().ok()?;
                let keys = v
                    .split(',')
                    .find_map(|part| part.strip_prefix("keys="))?
                    .parse()
                    .ok()?;
                Some((db, keys))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_versions_and_keyspace() {
        let info = RedisInfo::parse(
            "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb5:keys=12,expires=1,avg_ttl=5\r\n",
        );
        assert_eq!(info.version(), Some("7.0.15"));
        assert_eq!(info.major_version(), Some(7));
        assert_eq!(info.get("redis_mode"), Some("standalone"));
        assert_eq!(info.keyspace(), BTreeMap::from([(0, 3), (5, 12)]));
        assert_eq!(RedisInfo::parse("").keyspace(), BTreeMap::new());
    }
}
