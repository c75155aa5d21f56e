//! OpenID Connect provider.
