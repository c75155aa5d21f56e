//! OpenID Connect login against a real OpenID Provider (tests/fixtures/oidc).
