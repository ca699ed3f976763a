#include "tests/support/fake_bot_framework.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tests/support/fake_https_server.h"

namespace runbot::testing {

using nlohmann::json;

namespace {

// The fake has its own base64url so that a bug in runbot's cannot hide in both sides.
std::string b64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

const EVP_MD* md_for(const std::string& alg) {
  if (alg == "RS256") return EVP_sha256();
  if (alg == "RS384") return EVP_sha384();
  if (alg == "RS512") return EVP_sha512();
  throw std::runtime_error("TestSigningKey: unsupported alg " + alg);
}

std::string bn_param(EVP_PKEY* pkey, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1 || !bn)
    throw std::runtime_error("EVP_PKEY_get_bn_param failed");
  std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(bn);
  return bytes;
}

std::string random_hex(std::size_t n) {
  std::string raw(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : raw) {
    out += kHex[static_cast<unsigned char>(c) >> 4];
    out += kHex[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

bool unreserved(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return std::nullopt;
      }
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_form(const std::string& body,
                                              std::vector<std::string>& problems) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= body.size() && !body.empty()) {
    auto amp = body.find('&', pos);
    const std::string pair =
        body.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const auto eq = pair.find('=');
    auto k = percent_decode(pair.substr(0, eq), true);
    auto v = percent_decode(eq == std::string::npos ? "" : pair.substr(eq + 1), true);
    if (!k || !v) {
      problems.push_back("token request: form field is not percent-encoded properly");
    } else {
      if (out.count(*k)) problems.push_back("token request: field " + *k + " sent twice");
      out[*k] = *v;
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

FakeHttpResponse json_answer(int status, const json& body) {
  return FakeHttpResponse{status, "application/json; charset=utf-8", body.dump(), {}};
}

std::int64_t seconds_of(bot::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------------------- TestSigningKey

TestSigningKey::TestSigningKey(std::string kid) : kid_(std::move(kid)) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
  if (!pkey) throw std::runtime_error("TestSigningKey: RSA key generation failed");
  pkey_ = std::shared_ptr<evp_pkey_st>(pkey, EVP_PKEY_free);
}

json TestSigningKey::jwk(const std::optional<std::vector<std::string>>& endorsements) const {
  json j{{"kty", "RSA"},
         {"use", "sig"},
         {"kid", kid_},
         {"n", b64url(bn_param(pkey_.get(), OSSL_PKEY_PARAM_RSA_N))},
         {"e", b64url(bn_param(pkey_.get(), OSSL_PKEY_PARAM_RSA_E))}};
  if (endorsements) j["endorsements"] = *endorsements;
  return j;
}

std::string TestSigningKey::raw_sign(std::string_view input, const std::string& alg) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  std::string sig;
  bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, md_for(alg), nullptr, pkey_.get()) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("TestSigningKey: signing failed");
  return sig;
}

std::string TestSigningKey::sign_with_header(const json& header, const json& claims) const {
  const std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
  const std::string alg = str(header, "alg");
  return input + "." +
         b64url(raw_sign(input, alg.empty() || alg.rfind("RS", 0) != 0 ? "RS256" : alg));
}

std::string TestSigningKey::sign(const json& claims, const std::string& alg) const {
  return sign_with_header(json{{"alg", alg}, {"typ", "JWT"}, {"kid", kid_}}, claims);
}

// ---------------------------------------------------------------------------- FakeBotFramework

struct FakeBotFramework::Impl {
  Impl(boost::asio::io_context& io_, const TestCa& ca, FakeBotFrameworkSettings s,
       FakeBotFramework* o)
      : io(io_),
        settings(std::move(s)),
        owner(o),
        server(io_, ca, [this](const FakeHttpRequest& r) { return handle(r); }) {
    if (!settings.now) {
      settings.now = [] {
        return std::chrono::time_point_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now());
      };
    }
    keys.emplace_back(new_kid());
    served.insert(keys.back().kid());
    current = keys.back().kid();
  }

  boost::asio::io_context& io;
  FakeBotFrameworkSettings settings;
  FakeBotFramework* owner;
  FakeHttpsServer server;
  std::vector<TestSigningKey> keys;  // every key made (served or not)
  std::set<std::string> served;
  std::string current;
  std::optional<TestSigningKey> forger;
  int kid_counter = 0;
  int metadata = 0;
  int jwks = 0;
  std::deque<int> keys_failures;
  int tokens_requested = 0;
  std::vector<std::string> issued;
  std::set<std::string> valid_tokens;
  struct Injection {
    int status = 0;
    int retry_after = -1;
    json body;
  };
  std::deque<Injection> injections;
  int next_id = 1;
  struct Member {
    std::string email;
    std::string upn;
    std::string name;
  };
  std::map<std::pair<std::string, std::string>, Member> members;  // (conversation, user id)
  int member_calls = 0;
  std::map<std::string, std::string> token_scope;  // issued token → its scope
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> groups;  // by object id
  bool graph_denied = false;
  std::deque<int> graph_failures;
  int graph_calls = 0;

  std::string new_kid() {
    return "fake-kid-" + std::to_string(++kid_counter) + "-" + random_hex(4);
  }
  const TestSigningKey& key(const std::string& kid) const {
    for (const auto& k : keys) {
      if (k.kid() == kid) return k;
    }
    throw std::runtime_error("FakeBotFramework: no key " + kid);
  }
  void problem(std::string p) {
    if (owner) owner->problems.push_back(std::move(p));
  }
  std::vector<std::string>& problems_ref() {
    static std::vector<std::string> sink;
    return owner ? owner->problems : sink;
  }

  FakeHttpResponse handle(const FakeHttpRequest& r);
  FakeHttpResponse well_known(const FakeHttpRequest& r);
  FakeHttpResponse token(const FakeHttpRequest& r, const std::string& tenant);
  FakeHttpResponse connector(const FakeHttpRequest& r);
  FakeHttpResponse graph(const FakeHttpRequest& r);
  // The token of an Authorization header if this fake issued it for `scope` and it is still valid;
  // otherwise the 401 to answer (with a problem noted for protocol slips).
  std::optional<FakeHttpResponse> check_bearer(const FakeHttpRequest& r, const std::string& scope,
                                               const std::string& what);
};

FakeHttpResponse FakeBotFramework::Impl::handle(const FakeHttpRequest& r) {
  if (r.path.find("//") != std::string::npos) problem("request path has a double slash: " + r.path);
  if (r.path.rfind("/v1/.well-known/", 0) == 0) return well_known(r);
  const std::string token_suffix = "/oauth2/v2.0/token";
  if (r.path.size() > token_suffix.size() &&
      r.path.compare(r.path.size() - token_suffix.size(), token_suffix.size(), token_suffix) == 0) {
    return token(r, r.path.substr(1, r.path.size() - token_suffix.size() - 1));
  }
  if (r.path.rfind(settings.service_prefix, 0) == 0) return connector(r);
  if (r.path.rfind("/graph/v1.0/", 0) == 0) return graph(r);
  problem("unknown route " + r.method + " " + r.path);
  return json_answer(404, {{"error", {{"code", "NotFound"}, {"message", "no such route"}}}});
}

FakeHttpResponse FakeBotFramework::Impl::well_known(const FakeHttpRequest& r) {
  if (r.method != "GET") {
    problem("well-known endpoint called with " + r.method);
    return json_answer(405, json::object());
  }
  const bool is_metadata = r.path == "/v1/.well-known/openidconfiguration";
  const bool is_keys = r.path == "/v1/.well-known/keys";
  if (!is_metadata && !is_keys) {
    problem("unknown well-known path " + r.path);
    return json_answer(404, json::object());
  }
  if (is_metadata) ++metadata;
  if (is_keys) ++jwks;
  if (!keys_failures.empty()) {
    const int status = keys_failures.front();
    keys_failures.pop_front();
    return FakeHttpResponse{status, "text/plain", "fake failure", {}};
  }
  const std::string base = server.url();
  if (is_metadata) {
    return json_answer(200, {{"issuer", settings.issuer},
                             {"authorization_endpoint", "https://invalid.botframework.com"},
                             {"jwks_uri", base + "/v1/.well-known/keys"},
                             {"id_token_signing_alg_values_supported", {"RS256"}},
                             {"token_endpoint_auth_methods_supported", {"private_key_jwt"}}});
  }
  json list = json::array();
  for (const auto& k : keys) {
    if (served.count(k.kid())) list.push_back(k.jwk(settings.endorsements));
  }
  return json_answer(200, {{"keys", list}});
}

FakeHttpResponse FakeBotFramework::Impl::token(const FakeHttpRequest& r,
                                               const std::string& tenant) {
  ++tokens_requested;
  if (r.method != "POST") problem("token request with method " + r.method);
  if (tenant != settings.tenant_id)
    problem("token request for tenant " + tenant + ", expected " + settings.tenant_id);
  auto ct = r.headers.find("content-type");
  if (ct == r.headers.end() || ct->second.rfind("application/x-www-form-urlencoded", 0) != 0) {
    problem("token request is not application/x-www-form-urlencoded");
  }
  if (r.headers.count("authorization")) problem("token request carries an Authorization header");
  auto form = parse_form(r.body, problems_ref());
  const auto field = [&](const char* k) {
    auto it = form.find(k);
    return it == form.end() ? std::string{} : it->second;
  };
  for (const auto& [k, v] : form) {
    if (k != "grant_type" && k != "client_id" && k != "client_secret" && k != "scope")
      problem("token request has unexpected field " + k);
  }
  if (field("grant_type") != "client_credentials") {
    problem("token request grant_type is not client_credentials");
    return json_answer(400,
                       {{"error", "unsupported_grant_type"}, {"error_description", "AADSTS70003"}});
  }
  if (field("scope") != settings.scope && field("scope") != settings.graph_scope) {
    problem("token request scope is neither " + settings.scope + " nor " + settings.graph_scope);
    return json_answer(400, {{"error", "invalid_scope"}, {"error_description", "AADSTS70011"}});
  }
  if (field("client_id") != settings.app_id || field("client_secret") != settings.app_password) {
    problem("token request with wrong client_id or client_secret");
    return json_answer(401,
                       {{"error", "invalid_client"},
                        {"error_description", "AADSTS7000215: Invalid client secret provided."}});
  }
  if (tenant != settings.tenant_id)
    return json_answer(400, {{"error", "invalid_request"}, {"error_description", "AADSTS90002"}});
  const std::string tok = "eyJ0eXAiOiJKV1QifQ.fake-aad-" + std::to_string(tokens_requested) + "-" +
                          random_hex(8) + ".sig";
  issued.push_back(tok);
  valid_tokens.insert(tok);
  token_scope[tok] = field("scope");
  return json_answer(200, {{"token_type", "Bearer"},
                           {"expires_in", settings.expires_in},
                           {"ext_expires_in", settings.expires_in},
                           {"access_token", tok}});
}

FakeHttpResponse FakeBotFramework::Impl::connector(const FakeHttpRequest& r) {
  Call call;
  call.method = r.method;
  call.path = r.path;
  const auto finish = [&](FakeHttpResponse res) {
    call.status = res.status;
    if (owner) owner->calls.push_back(call);
    return res;
  };
  const auto error_body = [](const std::string& code, const std::string& message) {
    return json{{"error", {{"code", code}, {"message", message}}}};
  };

  // Path: <prefix>v3/conversations[/seg…]
  const std::string root = settings.service_prefix + "v3/conversations";
  if (r.path.rfind(root, 0) != 0 || (r.path.size() > root.size() && r.path[root.size()] != '/')) {
    problem("unknown connector path " + r.path);
    return finish(json_answer(404, error_body("NotFound", "unknown path")));
  }
  std::string rest = r.path.substr(root.size());
  if (!rest.empty()) rest.erase(0, 1);
  if (!rest.empty() || r.path.size() > root.size()) {
    std::size_t pos = 0;
    for (;;) {
      const auto slash = rest.find('/', pos);
      const std::string raw =
          rest.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      for (char c : raw) {
        if (!unreserved(c) && c != '%') {
          problem(std::string("path segment has a character that should be percent-encoded: '") +
                  c + "'");
          break;
        }
      }
      auto decoded = percent_decode(raw, false);
      if (!decoded) problem("path segment with a broken percent-escape");
      if (raw.empty()) problem("empty path segment");
      call.segments.push_back(decoded.value_or(raw));
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
  }
  if (!r.body.empty()) {
    call.body = json::parse(r.body, nullptr, false);
    if (call.body.is_discarded()) {
      problem("connector call body is not JSON");
      call.body = nullptr;
    }
  }

  // Authorization first, as the real service does.
  if (auto denied = check_bearer(r, settings.scope, "connector call")) return finish(*denied);

  // Route and protocol checks.
  const auto& seg = call.segments;
  std::string kind;
  if (seg.empty() && r.method == "POST")
    kind = "create";
  else if (seg.size() == 2 && seg[1] == "activities" && r.method == "POST")
    kind = "send";
  else if (seg.size() == 3 && seg[1] == "activities" && r.method == "POST")
    kind = "reply";
  else if (seg.size() == 3 && seg[1] == "activities" && r.method == "PUT")
    kind = "update";
  else if (seg.size() == 3 && seg[1] == "activities" && r.method == "DELETE")
    kind = "delete";
  else if (seg.size() == 3 && seg[1] == "members" && r.method == "GET")
    kind = "get_member";
  if (kind.empty()) {
    problem("unknown connector route " + r.method + " " + r.path);
    return finish(json_answer(404, error_body("NotFound", "unknown route")));
  }
  if (kind == "get_member") {
    ++member_calls;
    if (!r.body.empty()) problem("get_member: a GET with a body");
  } else if (kind != "delete") {
    auto ct = r.headers.find("content-type");
    if (ct == r.headers.end() || ct->second.rfind("application/json", 0) != 0)
      problem(kind + ": Content-Type is not application/json");
    if (!call.body.is_object()) {
      problem(kind + ": body is not a JSON object");
      return finish(json_answer(400, error_body("BadArgument", "body")));
    }
    if (kind == "create") {
      const bool tenant =
          !str(call.body, "tenantId").empty() ||
          (call.body.contains("channelData") && call.body["channelData"].contains("tenant") &&
           !str(call.body["channelData"]["tenant"], "id").empty());
      if (!tenant) problem("create_conversation without tenantId / channelData.tenant.id");
      if (!call.body.contains("bot") && !call.body.contains("isGroup"))
        problem("create_conversation without bot or isGroup");
    } else if (str(call.body, "type").empty()) {
      problem(kind + ": activity without type");
    }
    if (kind == "reply" && str(call.body, "replyToId") != seg[2])
      problem("reply: body replyToId differs from the path's activity id");
  }

  if (!injections.empty()) {
    Injection inj = injections.front();
    injections.pop_front();
    FakeHttpResponse res = json_answer(
        inj.status, inj.body.is_null() ? error_body("ServiceError", "injected failure") : inj.body);
    if (inj.retry_after >= 0)
      res.headers.emplace_back("Retry-After", std::to_string(inj.retry_after));
    return finish(res);
  }

  if (kind == "get_member") {
    auto m = members.find({seg[0], seg[2]});
    if (m == members.end())
      return finish(json_answer(404, error_body("MemberNotFoundInConversation",
                                                "The user is not a member of the conversation")));
    json account = {{"id", seg[2]},
                    {"name", m->second.name},
                    {"aadObjectId", "00000000-0000-0000-0000-" + random_hex(6)},
                    {"givenName", "Fake"},
                    {"surname", "User"},
                    {"tenantId", settings.tenant_id},
                    {"userRole", "user"}};
    if (!m->second.email.empty()) account["email"] = m->second.email;
    if (!m->second.upn.empty()) account["userPrincipalName"] = m->second.upn;
    return finish(json_answer(200, account));
  }

  const std::string id = std::to_string(1714557600000 + next_id++);
  if (kind == "create") {
    if (call.body.value("isGroup", false)) {
      const std::string channel =
          call.body.contains("channelData") && call.body["channelData"].contains("channel")
              ? str(call.body["channelData"]["channel"], "id")
              : "19:fake@thread.tacv2";
      return finish(json_answer(201, {{"id", channel + ";messageid=" + id}, {"activityId", id}}));
    }
    return finish(json_answer(201, {{"id", "a:fake-conversation-" + id}}));
  }
  if (kind == "update") return finish(json_answer(200, {{"id", seg[2]}}));
  if (kind == "delete") return finish(FakeHttpResponse{200, "", "", {}});
  return finish(json_answer(201, {{"id", id}}));
}

std::optional<FakeHttpResponse> FakeBotFramework::Impl::check_bearer(const FakeHttpRequest& r,
                                                                    const std::string& scope,
                                                                    const std::string& what) {
  const auto refuse = [] {
    return json_answer(401, {{"message", "Authorization has been denied for this request."}});
  };
  auto auth = r.headers.find("authorization");
  if (auth == r.headers.end()) {
    problem(what + " without Authorization");
    return refuse();
  }
  const std::string prefix = "Bearer ";
  const std::string tok =
      auth->second.rfind(prefix, 0) == 0 ? auth->second.substr(prefix.size()) : "";
  if (tok.empty() || std::find(issued.begin(), issued.end(), tok) == issued.end()) {
    problem(what + " with a token this fake never issued");
    return refuse();
  }
  if (token_scope[tok] != scope) {
    problem(what + " with a token for " + token_scope[tok]);
    return refuse();
  }
  if (!valid_tokens.count(tok)) return refuse();
  return std::nullopt;
}

FakeHttpResponse FakeBotFramework::Impl::graph(const FakeHttpRequest& r) {
  const auto error_body = [](const std::string& code, const std::string& message) {
    return json{{"error", {{"code", code}, {"message", message}}}};
  };
  if (auto denied = check_bearer(r, settings.graph_scope, "graph call")) return *denied;
  // /graph/v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group
  const std::string head = "/graph/v1.0/users/";
  const std::string tail = "/transitiveMemberOf/microsoft.graph.group";
  if (r.method != "GET" || r.path.size() <= head.size() + tail.size() ||
      r.path.compare(r.path.size() - tail.size(), tail.size(), tail) != 0) {
    problem("unknown graph route " + r.method + " " + r.path);
    return json_answer(400, error_body("Request_BadRequest", "unsupported query"));
  }
  const std::string raw = r.path.substr(head.size(), r.path.size() - head.size() - tail.size());
  const std::string oid = percent_decode(raw, false).value_or(raw);
  ++graph_calls;
  // The OData cast needs the advanced query mode.
  auto consistency = r.headers.find("consistencylevel");
  std::map<std::string, std::string> query;
  for (std::size_t pos = 0; pos <= r.query.size() && !r.query.empty();) {
    const auto amp = r.query.find('&', pos);
    const std::string kv = r.query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const auto eq = kv.find('=');
    query[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  if (consistency == r.headers.end() || consistency->second != "eventual" ||
      query["$count"] != "true") {
    problem("graph: an OData cast without ConsistencyLevel: eventual and $count=true");
    return json_answer(400, error_body("Request_UnsupportedQuery",
                                       "Requested query is not supported without ConsistencyLevel"));
  }
  if (!graph_failures.empty()) {
    const int status = graph_failures.front();
    graph_failures.pop_front();
    return json_answer(status, error_body("ServiceError", "injected failure"));
  }
  if (graph_denied)
    return json_answer(403, error_body("Authorization_RequestDenied",
                                       "Insufficient privileges to complete the operation."));
  auto user = groups.find(oid);
  if (user == groups.end())
    return json_answer(404, error_body("Request_ResourceNotFound",
                                       "Resource '" + oid + "' does not exist."));
  std::size_t page = static_cast<std::size_t>(std::max(settings.graph_page_size, 1));
  if (!query["$top"].empty()) page = std::min<std::size_t>(page, std::stoul(query["$top"]));
  const std::size_t skip = query["$skiptoken"].empty() ? 0 : std::stoul(query["$skiptoken"]);
  json value = json::array();
  for (std::size_t i = skip; i < user->second.size() && i < skip + page; ++i) {
    value.push_back({{"@odata.type", "#microsoft.graph.group"},
                     {"id", user->second[i].first},
                     {"displayName", user->second[i].second}});
  }
  json body{{"@odata.context", "https://graph.microsoft.com/v1.0/$metadata#groups(id,displayName)"},
            {"@odata.count", user->second.size()},
            {"value", value}};
  if (skip + page < user->second.size()) {
    // Graph's next link repeats the query with an opaque skip token.
    body["@odata.nextLink"] = server.url() + r.path + "?" + r.query.substr(0, r.query.find("&$skiptoken")) +
                              "&$skiptoken=" + std::to_string(skip + page);
  }
  return json_answer(200, body);
}

FakeBotFramework::FakeBotFramework(boost::asio::io_context& io, const TestCa& ca,
                                   FakeBotFrameworkSettings settings)
    : impl_(std::make_shared<Impl>(io, ca, std::move(settings), this)) {}

FakeBotFramework::~FakeBotFramework() {
  impl_->owner = nullptr;
  impl_->server.stop();
}

std::uint16_t FakeBotFramework::start() {
  return impl_->server.start();
}
void FakeBotFramework::stop() {
  impl_->server.stop();
}
const FakeBotFrameworkSettings& FakeBotFramework::settings() const {
  return impl_->settings;
}
std::string FakeBotFramework::base_url() const {
  return impl_->server.url();
}
std::string FakeBotFramework::openid_metadata_url() const {
  return base_url() + "/v1/.well-known/openidconfiguration";
}
std::string FakeBotFramework::token_url() const {
  return base_url() + "/" + impl_->settings.tenant_id + "/oauth2/v2.0/token";
}
std::string FakeBotFramework::service_url() const {
  return base_url() + impl_->settings.service_prefix;
}

std::string FakeBotFramework::current_kid() const {
  return impl_->current;
}

std::string FakeBotFramework::sign(const json& claims, const std::string& kid) const {
  return impl_->key(kid.empty() ? impl_->current : kid).sign(claims);
}

std::string FakeBotFramework::forge(const json& claims, const std::string& kid) const {
  if (!impl_->forger) impl_->forger.emplace(kid.empty() ? impl_->current : kid);
  const json header{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", kid.empty() ? impl_->current : kid}};
  return impl_->forger->sign_with_header(header, claims);
}

json FakeBotFramework::claims_for(const json& activity) const {
  const auto now = seconds_of(impl_->settings.now());
  return json{{"iss", impl_->settings.issuer},
              {"aud", impl_->settings.app_id},
              {"serviceurl", str(activity, "serviceUrl")},
              {"nbf", now - 60},
              {"iat", now - 60},
              {"exp", now + impl_->settings.token_lifetime.count()}};
}

std::string FakeBotFramework::token_for(const json& activity) const {
  return sign(claims_for(activity));
}

json FakeBotFramework::make_activity(const std::string& text,
                                     const std::string& conversation_id) const {
  const std::string id = std::to_string(1714557600000 + impl_->next_id++);
  return json{{"type", "message"},
              {"id", id},
              {"timestamp", bot::format_time(impl_->settings.now())},
              {"serviceUrl", service_url()},
              {"channelId", "msteams"},
              {"from",
               {{"id", "29:1alice-fake"},
                {"name", "Alice"},
                {"aadObjectId", "7faf8ab2-0000-0000-0000-000000000001"}}},
              {"conversation",
               {{"conversationType", "personal"},
                {"tenantId", impl_->settings.tenant_id},
                {"id", conversation_id}}},
              {"recipient", {{"id", "28:" + impl_->settings.app_id}, {"name", "runbot"}}},
              {"textFormat", "plain"},
              {"text", text},
              {"channelData", {{"tenant", {{"id", impl_->settings.tenant_id}}}}},
              {"locale", "en-US"}};
}

std::string FakeBotFramework::rotate_key(bool keep_old) {
  if (!keep_old) impl_->served.erase(impl_->current);
  impl_->keys.emplace_back(impl_->new_kid());
  impl_->current = impl_->keys.back().kid();
  impl_->served.insert(impl_->current);
  return impl_->current;
}

std::string FakeBotFramework::add_unpublished_key() {
  impl_->keys.emplace_back(impl_->new_kid());
  return impl_->keys.back().kid();
}

void FakeBotFramework::publish_key(const std::string& kid) {
  (void)impl_->key(kid);
  impl_->served.insert(kid);
}

void FakeBotFramework::set_endorsements(std::optional<std::vector<std::string>> endorsements) {
  impl_->settings.endorsements = std::move(endorsements);
}

int FakeBotFramework::metadata_requests() const {
  return impl_->metadata;
}
int FakeBotFramework::keys_requests() const {
  return impl_->jwks;
}
void FakeBotFramework::fail_keys_next(int status, int count) {
  for (int i = 0; i < count; ++i) impl_->keys_failures.push_back(status);
}

int FakeBotFramework::token_requests() const {
  return impl_->tokens_requested;
}
std::vector<std::string> FakeBotFramework::issued_tokens() const {
  return impl_->issued;
}
void FakeBotFramework::set_expires_in(int seconds) {
  impl_->settings.expires_in = seconds;
}
void FakeBotFramework::invalidate_tokens() {
  impl_->valid_tokens.clear();
}

void FakeBotFramework::fail_next(int status, int count, int retry_after_seconds) {
  for (int i = 0; i < count; ++i)
    impl_->injections.push_back(Impl::Injection{status, retry_after_seconds, nullptr});
}

void FakeBotFramework::block_next(int count) {
  const json body{
      {"errorCode", 209},
      {"message",
       R"({"errorCode":209,"message":"{\r\n  \"subCode\": \"MessageWritesBlocked\",\r\n  \"details\": \"Thread is blocked from message writes.\",\r\n  \"errorCode\": null,\r\n  \"errorSubCode\": null\r\n}"})"}};
  for (int i = 0; i < count; ++i) impl_->injections.push_back(Impl::Injection{403, -1, body});
}

void FakeBotFramework::too_big_next(int count) {
  const json body{
      {"error", {{"code", "MessageSizeTooBig"}, {"message", "Message size too large"}}}};
  for (int i = 0; i < count; ++i) impl_->injections.push_back(Impl::Injection{413, -1, body});
}

void FakeBotFramework::post_activity(const std::string& url, const json& activity,
                                     const std::string& authorization,
                                     std::function<void(int status, std::string body)> done) {
  std::vector<std::pair<std::string, std::string>> headers{
      {"Content-Type", "application/json; charset=utf-8"}};
  if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
  plain_http_request(impl_->io, "POST", url, std::move(headers), activity.dump(), std::move(done));
}

void FakeBotFramework::add_member(const std::string& conversation, const std::string& user_id,
                                  const std::string& email, const std::string& upn,
                                  const std::string& name) {
  impl_->members[{conversation, user_id}] = Impl::Member{email, upn, name};
}

int FakeBotFramework::member_requests() const {
  return impl_->member_calls;
}

std::string FakeBotFramework::graph_url() const {
  return base_url() + "/graph/v1.0";
}
void FakeBotFramework::set_groups(const std::string& object_id,
                                  std::vector<std::pair<std::string, std::string>> groups) {
  impl_->groups[object_id] = std::move(groups);
}
void FakeBotFramework::deny_graph(bool deny) {
  impl_->graph_denied = deny;
}
void FakeBotFramework::fail_graph_next(int status, int count) {
  for (int i = 0; i < count; ++i) impl_->graph_failures.push_back(status);
}
int FakeBotFramework::graph_requests() const {
  return impl_->graph_calls;
}

std::vector<FakeBotFramework::Call> FakeBotFramework::calls_to(const std::string& method) const {
  std::vector<Call> out;
  for (const auto& c : calls) {
    if (c.method == method) out.push_back(c);
  }
  return out;
}

}  // namespace runbot::testing
