"""Identity: users, organizations, memberships, tokens, API keys, audit, GDPR."""
