//! Typed identifiers, so a place id can never be passed where a person id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A place in the registry tree.
    PlaceId
);
id_type!(
    /// An organisation.
    OrgId
);
id_type!(
    /// A person in the registry.
    PersonId
);
id_type!(
    /// A login account.
    AccountId
);
id_type!(
    /// An effective-dated relation between a person and an organisation or place.
    RelationId
);
