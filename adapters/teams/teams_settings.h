#pragma once
// TeamsSettings: what the Teams adapter needs from the configuration (config key `teams:`).
// TeamsAuthSettings drives the inbound JWT check (chat-protocols.md §3.4), ConnectorSettings the
// outbound Bot Connector client and its OAuth2 token (§3.5, §3.6). Secrets (app_password) must be
// redacted wherever settings are printed.
#include <chrono>
#include <cstddef>
#include <string>

namespace runbot::teams {

struct TeamsAuthSettings {
  std::string app_id;  // the Microsoft App ID (GUID): the token's required audience
  std::string openid_metadata_url = "https://login.botframework.com/v1/.well-known/openidconfiguration";
  std::string issuer = "https://api.botframework.com";
  std::chrono::seconds clock_skew{300};               // tolerance on exp / nbf
  std::chrono::hours keys_ttl{120};                   // JWKS cache lifetime (the SDK's 5 days)
  // The global floor between key fetches caused by unknown kids (and retries after a failed
  // fetch): a validation that needs a fetch within it waits for the next allowed one.
  std::chrono::seconds min_refresh_interval{5};
  // A kid still unknown after a fetch (or one that was dropped from the JWKS) causes no fetch of
  // its own for this long; tokens with it get 401 at once. At most unknown_kid_capacity remembered.
  std::chrono::seconds unknown_kid_ttl{300};
  std::size_t unknown_kid_capacity = 1000;
  // Validations waiting for one fetch; more are answered unavailable (the adapter's 503).
  std::size_t max_waiting = 1000;
  std::chrono::milliseconds fetch_timeout{10000};     // each metadata / JWKS request
};

struct ConnectorSettings {
  std::string app_id;        // OAuth2 client_id
  std::string app_password;  // OAuth2 client_secret: never logged
  std::string tenant_id;     // Entra tenant (SingleTenant); "botframework.com" for legacy multi-tenant bots
  // Empty = https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token
  std::string token_url;
  std::string scope = "https://api.botframework.com/.default";
  std::chrono::milliseconds timeout{10000};  // each token and connector request
  std::chrono::seconds refresh_before{300};  // renew the cached token this long before it expires
};

// Microsoft Graph, used only to look up a user's Entra groups when a role binding names groups
// (graph_client.h). Defaults are the global cloud; national clouds and tests override both.
struct GraphSettings {
  std::string url = "https://graph.microsoft.com/v1.0";
  std::string scope = "https://graph.microsoft.com/.default";
  int max_pages = 10;  // of 999 groups each
};

// What the adapter itself needs (the endpoint, TLS trust, dedupe). Added by the adapter side.
struct TeamsAdapterOptions {
  std::string messaging_path = "/api/messages";  // route on runbot's HTTP server
  // PEM bundle to verify login.microsoftonline.com, login.botframework.com and the connector
  // (serviceUrl hosts); empty = the system store. Tests point it at their CA.
  std::string ca_file;
  std::chrono::seconds dedupe_ttl{300};  // redelivered activities (Teams retries after 15 s)
  std::size_t dedupe_capacity = 10000;
  std::size_t max_names = 10000;  // display names remembered for mentions
  // Activities that arrive before start() (the route is live before the bot is) are held, checked
  // and processed in arrival order once start() gives the handler: at most early_capacity of them,
  // each at most early_hold (the Bot Connector waits 15 s); an invoke is answered at most
  // early_invoke_deadline after it arrived (Teams waits 5 s). Past these bounds: 503.
  std::chrono::milliseconds early_hold{10000};
  std::size_t early_capacity = 1000;
  std::chrono::milliseconds early_invoke_deadline{4500};
  bool greet_on_install = true;   // say hello when the bot is added to a team or chat
  // Identity lookups for role bindings (README.md, "Who is asking"). Set by the composition root
  // from the policy (bot::identity_needs): the Bot Connector's "get conversation member" gives
  // email / userPrincipalName; Microsoft Graph gives the user's Entra groups.
  bool lookup_email = false;
  bool lookup_groups = false;
  std::chrono::milliseconds identity_cache_ttl{600000};  // config `teams.identity_cache`
  std::chrono::milliseconds identity_deadline{2000};     // a slower lookup counts as failed
  std::size_t identity_cache_capacity = 10000;           // users remembered
};

struct TeamsSettings {
  TeamsAuthSettings auth;
  ConnectorSettings connector;
  GraphSettings graph;
  TeamsAdapterOptions adapter;
};

}  // namespace runbot::teams
