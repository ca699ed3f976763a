#pragma once
// TlsContext: the client-side TLS configuration shared by HttpsClient and WebSocketClient: TLS 1.2+,
// peer verification always on, trust anchors from a PEM bundle (`ca_file`) or, when that is empty,
// the system's default store. Host names are checked per connection (SNI + certificate name) by
// the clients themselves.
//
// Ownership: create once with TlsContext::create() and share the shared_ptr; the clients keep it
// alive as long as they have connections. Immutable after creation, so it may be shared freely.
//
// Errors: create() returns invalid_argument naming the file when the CA bundle cannot be loaded,
// or internal when OpenSSL cannot set up a context.
#include <memory>
#include <string>

#include "bot/result.h"

namespace runbot::common {

class TlsContext {
 public:
  struct Impl;  // holds the boost::asio::ssl::context; defined in tls_context_impl.h

  static bot::Result<std::shared_ptr<TlsContext>> create(const std::string& ca_file);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  const std::string& ca_file() const;
  Impl& impl() { return *impl_; }

 private:
  explicit TlsContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runbot::common
